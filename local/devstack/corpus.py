"""A corpus of realistic notification texts for `make bench`: what smart encoding saves in SMS parts.

English notifications as they reach a gateway from templates written in word processors and phone
keyboards (curly quotes and apostrophes, long dashes, the ellipsis, a non-breaking space before a
currency), next to plain ASCII ones and Bangla ones, which smart encoding must leave as they are.
"""

from __future__ import annotations

from smsgw.segments import segment, smart_encode

ENGLISH_TYPOGRAPHIC = [
    "Your OTP is 482913. It\u2019s valid for 5 minutes \u2014 don\u2019t share it with anyone.",
    "Hi Rahim, your order #A-1042 has shipped! Track it at shop.example.com/t/A1042 \u2026 Thanks for shopping.",
    "Reminder: your appointment with Dr. Karim is tomorrow at 10:30 AM. Reply \u201cC\u201d to cancel.",
    "We\u2019ve received your payment of BDT\u00a01,250.00 \u2013 thank you! Your receipt number is 77310.",
    "Your account password was changed. If this wasn\u2019t you, call 16247 now.",
    "Flash sale \u2014 30% off everything until midnight! Use code \u201cEID30\u201d at checkout.",
    "Dear customer, your electricity bill of BDT\u00a02,340 is due on 25 Nov. Pay online to avoid a late fee\u2026",
    "Your parcel couldn\u2019t be delivered today. We\u2019ll try again tomorrow between 9 AM \u2013 1 PM.",
    "Welcome to Example Bank! Your card ending 4821 is now active. Questions? We\u2019re here 24/7.",
    "Your ride is arriving \u2014 Toyota Axio, plate DHA-GA 11-2233. Driver: Jamal (4.9\u2605).",
    "Exam results are out! Log in to the \u201cStudent Portal\u201d to see yours. Good luck \u2026 and well done.",
    "Low balance alert: your wallet has BDT\u00a045 left. Top up now so payments don\u2019t fail.",
    "Your table for 4 at Spice Garden is confirmed for Friday, 8 PM. Can\u2019t make it? Reply \u201cNO\u201d.",
    "Thanks for your feedback \u2013 we\u2019ve passed it to our team and will get back to you within 2 days.",
    "Security code: 551203. Never share this code \u2014 our staff will never ask for it.",
    "Your subscription renews on 1 Dec for BDT\u00a0499. To cancel, visit the app\u2019s \u201cAccount\u201d page.",
    "Order update: 2 of 3 items have shipped. The last one\u2019s on its way soon\u2026",
    "Hi! Your loyalty points (1,250) expire on 31 Dec \u2014 redeem them before it\u2019s too late.",
    "Your doctor\u2019s report is ready. Collect it from the front desk, Mon\u2013Sat, 9 AM\u20135 PM.",
    "Weather alert: heavy rain expected in Dhaka tonight. Stay safe and avoid travel if you can\u2026",
]
ENGLISH_PLAIN = [
    "Your OTP is 730155. Valid for 5 minutes. Do not share it.",
    "Your order #B-2210 has been delivered. Thank you for shopping with us!",
    "Payment received: BDT 800. Ref 99120. Thank you.",
    "Your appointment is confirmed for 12 Dec at 4 PM.",
    "Reply STOP to unsubscribe from promotional messages.",
    "Your verification code is 118204.",
    "Hi Nadia, your booking ID is KX72. See you on Saturday!",
    "Your refund of BDT 1,100 has been processed and will reach you in 3-5 days.",
]
BANGLA = [
    "আপনার ওটিপি ৪৮২৯১৩। ৫ মিনিটের জন্য বৈধ — কাউকে জানাবেন না।",
    "আপনার অর্ডার “A-1042” পাঠানো হয়েছে। ধন্যবাদ!",
    "প্রিয় গ্রাহক, আপনার বিল ২৫ নভেম্বরের মধ্যে পরিশোধ করুন…",
    "ঈদ মোবারক! সব পণ্যে ৩০% ছাড় — আজ রাত পর্যন্ত।",
]


def parts_saved() -> dict[str, float]:
    """SMS parts for the whole corpus as written and as smart encoding sends it, and the share saved."""
    corpus = ENGLISH_TYPOGRAPHIC + ENGLISH_PLAIN + BANGLA
    exact = sum(segment(text).parts for text in corpus)
    smart = sum(segment(smart_encode(text)).parts for text in corpus)
    english = ENGLISH_TYPOGRAPHIC + ENGLISH_PLAIN
    english_exact = sum(segment(text).parts for text in english)
    english_smart = sum(segment(smart_encode(text)).parts for text in english)
    untouched = all(smart_encode(text) == text for text in BANGLA)
    return {
        "corpus_messages": len(corpus),
        "corpus_parts_as_written": exact,
        "corpus_parts_smart": smart,
        "parts_saved_share": 1 - smart / exact,
        "english_parts_saved_share": 1 - english_smart / english_exact,
        "bangla_untouched": untouched,
    }
