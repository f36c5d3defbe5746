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
        "credit_note_date": "Issue date",
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
        "balance_applied": "Credit balance applied",
        "balance_credited": "Credited to your account balance",
        "due_on": "Due {date}",
        "notes": "Notes",
        "document_hash": "Document hash",
        "page_of": "Page {page} of {pages}",
        "email_subject": "Invoice {number} from {seller} — {amount} due {due_date}",
        "email_greeting": "Hello {buyer},",
        "email_body": "Please find attached invoice {number} for {amount}, due on {due_date}.",
        "email_questions": "If you have any questions about this invoice, please contact us.",
        "email_signoff": "Thank you,",
        "credit_note": "Credit note",
        "credit_note_number": "Credit note number",
        "corrects_invoice": "Corrects invoice {number} of {date}",
        "amount_credited": "Amount credited",
        "proforma": "Pro-forma invoice",
        "proforma_watermark": "Pro forma",
        "proforma_notice": "Pro forma: not a tax invoice and not a request for payment. The invoice follows.",
        "preview_notice": "Preview of a draft: not an invoice. The number and dates are set when it is finalized.",
        "references": "References",
        "po_number": "PO number",
        "project_code": "Project",
        "project": "Project",
        "merged_from": "Combines drafts {ids}",
        "split_from": "Split from {ref}",
        "split_share": "{share}% of {ref}",
        "rebill_of": "Replaces invoice {number} of {date}, credited in full",
        "cn_email_subject": "Credit note {number} from {seller} — {amount} credited to invoice {invoice_number}",
        "cn_email_body": (
            "Please find attached credit note {number} for {amount}, "
            "which corrects invoice {invoice_number}."
        ),
    },
    "pt-BR": {
        "invoice": "Fatura",
        "draft": "Rascunho",
        "invoice_number": "Número da fatura",
        "issue_date": "Data de emissão",
        "credit_note_date": "Data de emissão",
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
        "balance_applied": "Saldo credor aplicado",
        "balance_credited": "Creditado no saldo da sua conta",
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
        "credit_note": "Nota de crédito",
        "credit_note_number": "Número da nota de crédito",
        "corrects_invoice": "Corrige a fatura {number} de {date}",
        "amount_credited": "Valor creditado",
        "proforma": "Fatura pró-forma",
        "proforma_watermark": "Pró-forma",
        "proforma_notice": "Pró-forma: não é um documento fiscal nem uma cobrança. A fatura será emitida em seguida.",
        "preview_notice": "Pré-visualização de um rascunho: não é uma fatura. Número e datas são definidos na emissão.",
        "references": "Referências",
        "po_number": "Nº do pedido de compra",
        "project_code": "Projeto",
        "project": "Projeto",
        "merged_from": "Reúne os rascunhos {ids}",
        "split_from": "Desmembrada de {ref}",
        "split_share": "{share}% de {ref}",
        "rebill_of": "Substitui a fatura {number} de {date}, creditada integralmente",
        "cn_email_subject": "Nota de crédito {number} de {seller} — {amount} creditados na fatura {invoice_number}",
        "cn_email_body": (
            "Segue em anexo a nota de crédito {number} no valor de "
            "{amount}, que corrige a fatura {invoice_number}."
        ),
    },
    "es": {
        "invoice": "Factura",
        "draft": "Borrador",
        "invoice_number": "Número de factura",
        "issue_date": "Fecha de emisión",
        "credit_note_date": "Fecha de emisión",
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
        "balance_applied": "Saldo a favor aplicado",
        "balance_credited": "Abonado al saldo de su cuenta",
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
        "credit_note": "Nota de crédito",
        "credit_note_number": "Número de nota de crédito",
        "corrects_invoice": "Rectifica la factura {number} del {date}",
        "amount_credited": "Importe abonado",
        "proforma": "Factura proforma",
        "proforma_watermark": "Proforma",
        "proforma_notice": "Proforma: no es una factura ni una solicitud de pago. La factura se emitirá después.",
        "preview_notice": (
            "Vista previa de un borrador: no es una factura. El "
            "número y las fechas se asignan al emitirla."
        ),
        "references": "Referencias",
        "po_number": "N.º de pedido",
        "project_code": "Proyecto",
        "project": "Proyecto",
        "merged_from": "Agrupa los borradores {ids}",
        "split_from": "Dividida de {ref}",
        "split_share": "{share} % de {ref}",
        "rebill_of": "Sustituye a la factura {number} del {date}, abonada íntegramente",
        "cn_email_subject": "Nota de crédito {number} de {seller} — {amount} abonados a la factura {invoice_number}",
        "cn_email_body": (
            "Adjuntamos la nota de crédito {number} por {amount}, que "
            "rectifica la factura {invoice_number}."
        ),
    },
    "fr": {
        "invoice": "Facture",
        "draft": "Brouillon",
        "invoice_number": "Numéro de facture",
        "issue_date": "Date d’émission",
        "credit_note_date": "Date d’émission",
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
        "balance_applied": "Solde créditeur imputé",
        "balance_credited": "Porté au crédit de votre compte",
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
        "credit_note": "Avoir",
        "credit_note_number": "Numéro d’avoir",
        "corrects_invoice": "Rectifie la facture {number} du {date}",
        "amount_credited": "Montant crédité",
        "proforma": "Facture pro forma",
        "proforma_watermark": "Pro forma",
        "proforma_notice": "Pro forma : ni une facture ni une demande de paiement. La facture suivra.",
        "preview_notice": (
            "Aperçu d’un brouillon : ce n’est pas une facture. Le numéro "
            "et les dates sont attribués à l’émission."
        ),
        "references": "Références",
        "po_number": "N° de bon de commande",
        "project_code": "Projet",
        "project": "Projet",
        "merged_from": "Regroupe les brouillons {ids}",
        "split_from": "Issue de la division de {ref}",
        "split_share": "{share} % de {ref}",
        "rebill_of": "Remplace la facture {number} du {date}, créditée en totalité",
        "cn_email_subject": "Avoir {number} de {seller} — {amount} crédités sur la facture {invoice_number}",
        "cn_email_body": (
            "Veuillez trouver ci-joint l’avoir {number} d’un montant de "
            "{amount}, qui rectifie la facture {invoice_number}."
        ),
    },
    "de": {
        "invoice": "Rechnung",
        "draft": "Entwurf",
        "invoice_number": "Rechnungsnummer",
        "issue_date": "Rechnungsdatum",
        "credit_note_date": "Gutschriftsdatum",
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
        "balance_applied": "Verrechnetes Guthaben",
        "balance_credited": "Ihrem Kundenkonto gutgeschrieben",
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
        "credit_note": "Gutschrift",
        "credit_note_number": "Gutschriftnummer",
        "corrects_invoice": "Korrigiert die Rechnung {number} vom {date}",
        "amount_credited": "Gutgeschriebener Betrag",
        "proforma": "Proformarechnung",
        "proforma_watermark": "Proforma",
        "proforma_notice": "Proforma: keine Rechnung und keine Zahlungsaufforderung. Die Rechnung folgt.",
        "preview_notice": (
            "Vorschau eines Entwurfs: keine Rechnung. Nummer und "
            "Datum werden bei der Ausstellung vergeben."
        ),
        "references": "Referenzen",
        "po_number": "Bestellnummer",
        "project_code": "Projekt",
        "project": "Projekt",
        "merged_from": "Fasst die Entwürfe {ids} zusammen",
        "split_from": "Aufgeteilt aus {ref}",
        "split_share": "{share} % von {ref}",
        "rebill_of": "Ersetzt die Rechnung {number} vom {date}, vollständig gutgeschrieben",
        "cn_email_subject": "Gutschrift {number} von {seller} — {amount} zur Rechnung {invoice_number}",
        "cn_email_body": (
            "anbei erhalten Sie die Gutschrift {number} über {amount} "
            "zur Korrektur der Rechnung {invoice_number}."
        ),
    },
    "ja": {
        "invoice": "請求書",
        "draft": "下書き",
        "invoice_number": "請求書番号",
        "issue_date": "発行日",
        "credit_note_date": "発行日",
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
        "balance_applied": "クレジット残高の充当",
        "balance_credited": "お客様のクレジット残高に計上",
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
        "credit_note": "クレジットノート",
        "credit_note_number": "クレジットノート番号",
        "corrects_invoice": "{date} 付 請求書 {number} の訂正",
        "amount_credited": "クレジット金額",
        "proforma": "プロフォーマインボイス",
        "proforma_watermark": "プロフォーマ",
        "proforma_notice": (
            "プロフォーマ：本書は請求書ではなく、支払いを求めるものではありません。"
            "請求書は後日発行します。"
        ),
        "preview_notice": "下書きのプレビュー：請求書ではありません。番号と日付は確定時に付与されます。",
        "references": "参照",
        "po_number": "注文番号",
        "project_code": "プロジェクト",
        "project": "プロジェクト",
        "merged_from": "下書き {ids} を統合",
        "split_from": "{ref} から分割",
        "split_share": "{ref} の {share}%",
        "rebill_of": "{date} 付 請求書 {number}（全額クレジット済み）の差し替え",
        "cn_email_subject": "{seller} クレジットノート {number} — 請求書 {invoice_number} に {amount}",
        "cn_email_body": "請求書 {invoice_number} を訂正するクレジットノート {number}（{amount}）を添付いたします。",
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
