"""One package per instrumented library; each translates its library's calls into call records."""
