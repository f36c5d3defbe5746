"""Texts of the customer notices (trial ending, upcoming bill), per language (en, pt-BR, es, fr, de, ja).

`text_for(kind, language, **values)` -> (subject, body); a language without texts gets English,
matched like the invoice labels (exact tag, then the base language).
"""

from __future__ import annotations

from shared.documents.labels import catalog_language

TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "trial_will_end": {
        "en": ("Your trial ends on {date}",
               "The trial of your subscription {contract} ends on {date}. From the next day it is billed "
               "at the price of your plan. Nothing is needed from you to continue."),
        "pt-BR": ("Seu período de teste termina em {date}",
                  "O período de teste da sua assinatura {contract} termina em {date}. A partir do dia seguinte "
                  "ela será cobrada pelo preço do seu plano. Nada é necessário para continuar."),
        "es": ("Su periodo de prueba termina el {date}",
               "El periodo de prueba de su suscripción {contract} termina el {date}. A partir del día siguiente "
               "se factura al precio de su plan. No necesita hacer nada para continuar."),
        "fr": ("Votre période d'essai se termine le {date}",
               "La période d'essai de votre abonnement {contract} se termine le {date}. Dès le lendemain, il est "
               "facturé au prix de votre offre. Aucune action n'est requise pour continuer."),
        "de": ("Ihr Testzeitraum endet am {date}",
               "Der Testzeitraum Ihres Abonnements {contract} endet am {date}. Ab dem Folgetag wird es zum Preis "
               "Ihres Tarifs abgerechnet. Um fortzufahren, müssen Sie nichts tun."),
        "ja": ("お試し期間は{date}に終了します",
               "ご契約 {contract} のお試し期間は{date}に終了します。翌日からプランの料金で請求されます。"
               "継続のためのお手続きは不要です。"),
    },
    "upcoming_bill": {
        "en": ("Your next bill on {date}: {amount}",
               "On {date} you will be billed {amount} for your subscription {contract}, as your contract stands "
               "today."),
        "pt-BR": ("Sua próxima fatura em {date}: {amount}",
                  "Em {date} será emitida uma fatura de {amount} pela sua assinatura {contract}, conforme o seu "
                  "contrato hoje."),
        "es": ("Su próxima factura el {date}: {amount}",
               "El {date} se le facturarán {amount} por su suscripción {contract}, según su contrato a día de hoy."),
        "fr": ("Votre prochaine facture le {date} : {amount}",
               "Le {date}, {amount} vous seront facturés pour votre abonnement {contract}, selon votre contrat "
               "à ce jour."),
        "de": ("Ihre nächste Rechnung am {date}: {amount}",
               "Am {date} werden Ihnen für Ihr Abonnement {contract} {amount} berechnet, nach dem heutigen Stand "
               "Ihres Vertrags."),
        "ja": ("次回のご請求（{date}）：{amount}",
               "{date}に、ご契約 {contract} について {amount} をご請求します"
               "（本日時点のご契約内容に基づく金額です）。"),
    },
}


def text_for(kind: str, language: str | None, **values: str) -> tuple[str, str]:
    texts = TEXTS[kind]
    chosen = texts.get(catalog_language(language)) or texts["en"]
    subject, body = chosen
    return subject.format(**values), body.format(**values)
