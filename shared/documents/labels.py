"""The fixed words printed on invoices and in invoice emails, one catalog per language.

A language missing here falls back to its base language ("pt-PT" -> "pt-BR"), then to
English; a key missing in one catalog falls back to English. Placeholders use
`str.format` names: `{page}`, `{pages}`, `{number}`, `{seller}`, `{buyer}`, `{amount}`,
`{due_date}`, `{date}`.
"""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError

DEFAULT_LANGUAGE = "en"

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "invoice": "Invoice",
        "draft": "Draft",
        "invoice_number": "Invoice number",
        "issue_date": "Issue date",
        "due_date": "Due date",
        "currency": "Currency",
        "from": "From",
        "bill_to": "Bill to",
        "tax_id": "Tax ID",
        "description": "Description",
        "quantity": "Qty",
        "unit_price": "Unit price",
        "amount": "Amount",
        "contract": "Contract",
        "gl_code": "GL",
        "service_period": "Service period",
        "tax": "Tax",
        "rate": "Rate",
        "taxable_amount": "Taxable amount",
        "subtotal": "Subtotal",
        "tax_total": "Tax total",
        "total": "Total",
        "amount_due": "Amount due",
        "due_on": "Due {date}",
        "notes": "Notes",
        "document_hash": "Document hash",
        "page_of": "Page {page} of {pages}",
        "email_subject": "Invoice {number} from {seller} — {amount} due {due_date}",
        "email_greeting": "Hello {buyer},",
        "email_body": "Please find attached invoice {number} for {amount}, due on {due_date}.",
        "email_questions": "If you have any questions about this invoice, please contact us.",
        "email_signoff": "Thank you,",
    },
    "pt-BR": {
        "invoice": "Fatura",
        "draft": "Rascunho",
        "invoice_number": "Número da fatura",
        "issue_date": "Data de emissão",
        "due_date": "Vencimento",
        "currency": "Moeda",
        "from": "De",
        "bill_to": "Faturar para",
        "tax_id": "ID fiscal",
        "description": "Descrição",
        "quantity": "Qtd.",
        "unit_price": "Preço unitário",
        "amount": "Valor",
        "contract": "Contrato",
        "gl_code": "Conta contábil",
        "service_period": "Período do serviço",
        "tax": "Imposto",
        "rate": "Alíquota",
        "taxable_amount": "Base de cálculo",
        "subtotal": "Subtotal",
        "tax_total": "Total de impostos",
        "total": "Total",
        "amount_due": "Valor a pagar",
        "due_on": "Vencimento em {date}",
        "notes": "Observações",
        "document_hash": "Hash do documento",
        "page_of": "Página {page} de {pages}",
        "email_subject": "Fatura {number} de {seller} — {amount} com vencimento em {due_date}",
        "email_greeting": "Olá, {buyer},",
        "email_body": (
            "Segue em anexo a fatura {number} no valor de {amount}, "
            "com vencimento em {due_date}."
        ),
        "email_questions": "Em caso de dúvidas sobre esta fatura, entre em contato conosco.",
        "email_signoff": "Obrigado,",
    },
    "es": {
        "invoice": "Factura",
        "draft": "Borrador",
        "invoice_number": "Número de factura",
        "issue_date": "Fecha de emisión",
        "due_date": "Vencimiento",
        "currency": "Moneda",
        "from": "De",
        "bill_to": "Facturar a",
        "tax_id": "ID fiscal",
        "description": "Descripción",
        "quantity": "Cant.",
        "unit_price": "Precio unitario",
        "amount": "Importe",
        "contract": "Contrato",
        "gl_code": "Cuenta contable",
        "service_period": "Periodo de servicio",
        "tax": "Impuesto",
        "rate": "Tipo",
        "taxable_amount": "Base imponible",
        "subtotal": "Subtotal",
        "tax_total": "Total de impuestos",
        "total": "Total",
        "amount_due": "Importe a pagar",
        "due_on": "Vence el {date}",
        "notes": "Notas",
        "document_hash": "Hash del documento",
        "page_of": "Página {page} de {pages}",
        "email_subject": "Factura {number} de {seller} — {amount} con vencimiento el {due_date}",
        "email_greeting": "Hola, {buyer}:",
        "email_body": (
            "Adjuntamos la factura {number} por un importe de {amount}, "
            "con vencimiento el {due_date}."
        ),
        "email_questions": (
            "Si tiene alguna pregunta sobre esta factura, póngase en contacto con nosotros."
        ),
        "email_signoff": "Gracias,",
    },
    "fr": {
        "invoice": "Facture",
        "draft": "Brouillon",
        "invoice_number": "Numéro de facture",
        "issue_date": "Date d’émission",
        "due_date": "Échéance",
        "currency": "Devise",
        "from": "De",
        "bill_to": "Facturé à",
        "tax_id": "Identifiant fiscal",
        "description": "Description",
        "quantity": "Qté",
        "unit_price": "Prix unitaire",
        "amount": "Montant",
        "contract": "Contrat",
        "gl_code": "Compte",
        "service_period": "Période de service",
        "tax": "Taxe",
        "rate": "Taux",
        "taxable_amount": "Base imposable",
        "subtotal": "Sous-total",
        "tax_total": "Total des taxes",
        "total": "Total",
        "amount_due": "Montant dû",
        "due_on": "À régler avant le {date}",
        "notes": "Remarques",
        "document_hash": "Empreinte du document",
        "page_of": "Page {page} sur {pages}",
        "email_subject": "Facture {number} de {seller} — {amount} à régler avant le {due_date}",
        "email_greeting": "Bonjour {buyer},",
        "email_body": (
            "Veuillez trouver ci-joint la facture {number} d’un montant de {amount}, "
            "à régler avant le {due_date}."
        ),
        "email_questions": (
            "Pour toute question concernant cette facture, n’hésitez pas à nous contacter."
        ),
        "email_signoff": "Merci,",
    },
    "de": {
        "invoice": "Rechnung",
        "draft": "Entwurf",
        "invoice_number": "Rechnungsnummer",
        "issue_date": "Rechnungsdatum",
        "due_date": "Fälligkeitsdatum",
        "currency": "Währung",
        "from": "Von",
        "bill_to": "Rechnungsempfänger",
        "tax_id": "Steuer-ID",
        "description": "Beschreibung",
        "quantity": "Menge",
        "unit_price": "Einzelpreis",
        "amount": "Betrag",
        "contract": "Vertrag",
        "gl_code": "Sachkonto",
        "service_period": "Leistungszeitraum",
        "tax": "Steuer",
        "rate": "Satz",
        "taxable_amount": "Bemessungsgrundlage",
        "subtotal": "Zwischensumme",
        "tax_total": "Steuer gesamt",
        "total": "Gesamtbetrag",
        "amount_due": "Zahlbetrag",
        "due_on": "Fällig am {date}",
        "notes": "Hinweise",
        "document_hash": "Dokument-Hash",
        "page_of": "Seite {page} von {pages}",
        "email_subject": "Rechnung {number} von {seller} — {amount} fällig am {due_date}",
        "email_greeting": "Guten Tag {buyer},",
        "email_body": (
            "anbei erhalten Sie die Rechnung {number} über {amount}, fällig am {due_date}."
        ),
        "email_questions": "Bei Fragen zu dieser Rechnung kontaktieren Sie uns bitte.",
        "email_signoff": "Mit freundlichen Grüßen",
    },
    "ja": {
        "invoice": "請求書",
        "draft": "下書き",
        "invoice_number": "請求書番号",
        "issue_date": "発行日",
        "due_date": "支払期日",
        "currency": "通貨",
        "from": "請求元",
        "bill_to": "請求先",
        "tax_id": "登録番号",
        "description": "内容",
        "quantity": "数量",
        "unit_price": "単価",
        "amount": "金額",
        "contract": "契約",
        "gl_code": "勘定科目",
        "service_period": "サービス期間",
        "tax": "税",
        "rate": "税率",
        "taxable_amount": "課税対象額",
        "subtotal": "小計",
        "tax_total": "税額合計",
        "total": "合計",
        "amount_due": "ご請求金額",
        "due_on": "支払期日 {date}",
        "notes": "備考",
        "document_hash": "文書ハッシュ",
        "page_of": "{page} / {pages} ページ",
        "email_subject": "{seller} 請求書 {number} — {amount}（支払期日 {due_date}）",
        "email_greeting": "{buyer} 様",
        "email_body": (
            "請求書 {number} を添付いたします。ご請求金額は {amount}、"
            "お支払期日は {due_date} です。"
        ),
        "email_questions": "本請求書についてご不明な点がございましたら、お問い合わせください。",
        "email_signoff": "よろしくお願いいたします。",
    },
}


def catalog_language(language: str | None) -> str:
    """The catalog that serves `language`: exact, then same base language, then English."""
    if not language:
        return DEFAULT_LANGUAGE
    wanted = language.replace("_", "-").lower()
    by_lower = {code.lower(): code for code in LABELS}
    if wanted in by_lower:
        return by_lower[wanted]
    base = wanted.split("-")[0]
    for code in LABELS:
        if code.lower().split("-")[0] == base:
            return code
    return DEFAULT_LANGUAGE


@lru_cache(maxsize=64)
def labels_for(language: str | None) -> dict[str, str]:
    """Every label for `language`, English filling any key its catalog lacks."""
    return {**LABELS[DEFAULT_LANGUAGE], **LABELS[catalog_language(language)]}


@lru_cache(maxsize=64)
def babel_locale(language: str | None) -> str:
    """The babel locale for a BCP 47 tag ("pt-BR" -> "pt_BR", "en-GB" -> "en_GB").

    Numbers and dates follow the words: a language without a catalog of its own (so printed
    with English labels) is formatted as English too, never half one and half the other.
    """
    tag = (language or DEFAULT_LANGUAGE).replace("_", "-")
    if catalog_language(tag) == DEFAULT_LANGUAGE and tag.split("-")[0].lower() != "en":
        return DEFAULT_LANGUAGE
    try:
        return str(Locale.parse(tag.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return str(Locale.parse(catalog_language(tag).replace("-", "_")))
