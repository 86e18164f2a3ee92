"""The micro metrics of the support bot: the same objects run online and offline.

Online:  micrometrics.instrument(metrics=METRICS)
Offline: micrometrics eval dataset.jsonl --metrics examples/evaluation/metrics.py
"""

from micrometrics.metrics import BannedPhrases, LanguageMatch, ResponseLength, RetrievalPrecision

METRICS = [
    # A wrong-language answer is a ticket that a human agent redoes: about 4 EUR.
    LanguageMatch(cost_per_failure=4.0, currency="EUR", owner="support-quality", review_by="2027-03-31"),
    # A rambling answer costs a follow-up message, and sometimes the customer.
    ResponseLength(max_words=80, cost_per_failure=0.5, currency="EUR", owner="support-quality", review_by="2027-03-31"),
    # Brand voice: added after the launch; its review date has passed (keep it, or retire it).
    BannedPhrases(phrases=("as an AI language model", "delve"), cost_per_failure=1.0, currency="EUR", owner="brand-team", review_by="2026-06-30"),
    RetrievalPrecision(min_precision=0.5, owner="search-team", review_by="2027-03-31"),
]
