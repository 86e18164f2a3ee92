"""Speed of micrometrics' language detection next to langdetect's own detect().

Standalone: ``python benchmarks/language_speed.py [--rounds N]``. Detects
300-character customer-support texts in several languages, cycling through
them (as production traffic would, so CPU caches do not flatter the numbers),
and prints detections per second and median latency for both detectors,
measured in the same run, and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from langdetect import DetectorFactory  # noqa: E402
from langdetect import detect as langdetect_detect  # noqa: E402

from micrometrics.metrics.language import detect_language, prepare  # noqa: E402

SAMPLES = {
    "de": "Vielen Dank für Ihre Nachricht. Ihre Bestellung wurde heute an den Versanddienstleister übergeben "
    "und sollte in zwei bis drei Werktagen bei Ihnen sein. Die Sendungsnummer erhalten Sie in einer separaten "
    "E-Mail. Falls Sie Fragen zur Lieferung haben, antworten Sie einfach auf diese Nachricht, wir helfen gern.",
    "en": "Thank you for your message. Your order was handed over to the carrier today and should reach you "
    "within two to three business days. You will receive the tracking number in a separate email. If you "
    "have any questions about the delivery, simply reply to this message and we will be happy to help. "
    "Kind regards from the customer service team.",
    "fr": "Merci pour votre message. Votre commande a été remise au transporteur aujourd'hui et devrait vous "
    "parvenir sous deux à trois jours ouvrables. Vous recevrez le numéro de suivi dans un e-mail séparé. "
    "Pour toute question sur la livraison, répondez simplement à ce message, nous vous aiderons volontiers.",
    "es": "Gracias por su mensaje. Su pedido se ha entregado hoy a la empresa de transporte y debería llegar "
    "en un plazo de dos a tres días hábiles. Recibirá el número de seguimiento en un correo aparte. Si tiene "
    "alguna pregunta sobre la entrega, responda a este mensaje y le ayudaremos con mucho gusto. "
    "Un cordial saludo del equipo de atención al cliente.",
    "it": "Grazie per il suo messaggio. Il suo ordine è stato consegnato oggi al corriere e dovrebbe arrivare "
    "entro due o tre giorni lavorativi. Riceverà il numero di tracciamento in un'e-mail separata. Per qualsiasi "
    "domanda sulla consegna, risponda semplicemente a questo messaggio e saremo lieti di aiutarla. "
    "Cordiali saluti dal servizio clienti.",
    "pl": "Dziękujemy za wiadomość. Twoje zamówienie zostało dziś przekazane firmie kurierskiej i powinno "
    "dotrzeć w ciągu dwóch do trzech dni roboczych. Numer przesyłki otrzymasz w osobnym e-mailu. Jeśli masz "
    "pytania dotyczące dostawy, po prostu odpowiedz na tę wiadomość, chętnie pomożemy. "
    "Pozdrawiamy serdecznie, zespół obsługi klienta.",
    "ru": "Спасибо за ваше сообщение. Ваш заказ сегодня передан в службу доставки и должен прийти в течение "
    "двух-трёх рабочих дней. Номер для отслеживания вы получите отдельным письмом. Если у вас есть вопросы о "
    "доставке, просто ответьте на это сообщение, и мы с радостью поможем. "
    "С уважением, служба поддержки клиентов.",
    "ja": "お問い合わせいただきありがとうございます。ご注文の商品は本日配送業者に引き渡されました。二、三営業日以内にお届けする予定です。"
    "追跡番号は別のメールでお知らせいたします。配送についてご不明な点がございましたら、このメールにそのままご返信ください。"
    "担当者が喜んでお手伝いいたします。今後ともどうぞよろしくお願い申し上げます。ご不便をおかけして申し訳ございません。"
    "なお、お届け日時の変更をご希望の場合は、配送業者のウェブサイトから追跡番号を入力してお手続きいただけます。"
    "不在の場合は不在票が投函されますので、再配達のお申し込みをお願いいたします。商品到着後に破損や不足がございましたら、"
    "お手数ですが七日以内にご連絡ください。",
    "zh-cn": "感谢您的留言。您的订单今天已经交给快递公司，预计两到三个工作日内送达。物流单号将通过另一封邮件发送给您。"
    "如果您对配送有任何疑问，请直接回复这封邮件，我们很乐意为您提供帮助。再次感谢您的耐心与支持，祝您生活愉快。"
    "如有其他问题，欢迎随时联系我们的客服团队，我们每天早上九点到晚上九点为您服务。"
    "如果您希望更改送货时间，可以在快递公司的网站上输入物流单号进行修改。如果快递员上门时您不在家，"
    "包裹将被放在附近的快递柜或代收点，请您凭取件码及时领取。收到商品后，如发现有损坏或缺件的情况，"
    "请在七天内与我们联系，我们会第一时间为您处理退换货事宜。"
    "我们一直致力于为每一位顾客提供优质的商品和贴心的服务，您的满意是我们最大的动力。期待您的再次光临。",
    "ar": "شكرا لرسالتك. تم تسليم طلبك اليوم إلى شركة الشحن ومن المتوقع أن يصلك خلال يومين إلى ثلاثة أيام عمل. "
    "ستتلقى رقم التتبع في رسالة بريد إلكتروني منفصلة. إذا كانت لديك أي أسئلة حول التوصيل، فما عليك سوى الرد "
    "على هذه الرسالة وسيسعدنا مساعدتك. "
    "مع أطيب التحيات من فريق خدمة العملاء، ونتمنى لك يوما سعيدا.",
}
TEXTS = [text[:300] for text in SAMPLES.values()]


def measure(fn, rounds: int) -> tuple[float, float, float]:
    """(detections per CPU second, median CPU µs, detections per wall-clock second).

    CPU time of this thread, so that other processes on a busy machine do not
    distort the comparison; wall-clock throughput is printed alongside.
    """
    latencies: list[float] = []
    cpu = time.thread_time
    wall_start = time.perf_counter()
    for _ in range(rounds):
        for text in TEXTS:
            start = cpu()
            fn(text)
            latencies.append(cpu() - start)
    wall = time.perf_counter() - wall_start
    return len(latencies) / sum(latencies), statistics.median(latencies) * 1e6, len(latencies) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="passes over the texts for our detector")
    parser.add_argument("--langdetect-rounds", type=int, default=20, help="passes for langdetect (slower)")
    args = parser.parse_args()

    print(f"{len(TEXTS)} texts of {min(map(len, TEXTS))}-{max(map(len, TEXTS))} characters: {', '.join(SAMPLES)}")
    prepare()
    for text in TEXTS:
        detect_language(text)
    ours = measure(detect_language, args.rounds)

    DetectorFactory.seed = 0
    for text in TEXTS:
        langdetect_detect(text)
    theirs = measure(langdetect_detect, args.langdetect_rounds)

    print(f"{'detector':<30}{'detections/s':>14}{'median µs':>11}{'wall det/s':>12}")
    for name, (rate, median, wall_rate) in (("micrometrics detect_language", ours), ("langdetect detect (seeded)", theirs)):
        print(f"{name:<30}{rate:>14,.0f}{median:>11,.0f}{wall_rate:>12,.0f}")
    print(f"ratio: {ours[0] / theirs[0]:.1f}x the throughput, {theirs[1] / ours[1]:.1f}x lower median latency")

    agree = sum(detect_language(t).language == langdetect_detect(t) for t in TEXTS)
    print(f"same language as langdetect on {agree}/{len(TEXTS)} texts")
    print("per language (ours):", ", ".join(f"{lang}={detect_language(t).language}" for lang, t in zip(SAMPLES, TEXTS)))


if __name__ == "__main__":
    main()
