"""The platform's own wording on invoices (notes, line descriptions, proration rules), printed in
the customer's language.

An invoice stores its text in English: it is part of the hashed document of record and goes into
the e-invoice (BT-22 notes, BT-153 item names). Templates from `invoice_v3` print notes, line
descriptions and proration rules through `localized`, which recognizes the platform's own wording
(the English templates named below, each defined once where it is written) and gives it in the
invoice's language with the same values. Dates (fields named `*start`, `*day`, `*date`) are stored
ISO 8601 and printed in the language's format; a `description` value is localized in turn
("Credit: Managed Service: unused time ..."). Tax lines' names given by the platform ("VAT") are
translated by `localized_tax_name`. Anything else (a note someone typed, a plan's or charge's name,
a provider's tax name, a language without a translation) prints as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from functools import lru_cache

from shared.billing import fx, invoicing, rating, tax
from shared.documents.labels import catalog_language

# key -> the English template the platform writes (str.format names become the values carried over)
ENGLISH: dict[str, str] = {
    "eu_reverse_charge": tax.EU_REVERSE_CHARGE_NOTE,
    "gb_reverse_charge": tax.GB_REVERSE_CHARGE_NOTE,
    "reverse_charge": tax.REVERSE_CHARGE,
    "outside_scope": tax.OUTSIDE_SCOPE_NOTE,
    "exempt_customer": tax.EXEMPT_CUSTOMER_NOTE,
    "oss": tax.OSS_NOTE,
    "japan_off": tax.JAPAN_OFF_NOTE,
    "supplier_vat": tax.SUPPLIER_VAT_NOTE,
    "customer_vat": tax.CUSTOMER_VAT_NOTE,
    "supplier_tax_number": tax.SUPPLIER_TAX_NUMBER_NOTE,
    "registration_number": tax.REGISTRATION_NUMBER_NOTE,
    "jp_registration": tax.JP_REGISTRATION_NOTE,
    "no_sales_tax": tax.NO_SALES_TAX_NOTE,
    "exchange_rate": fx.EXCHANGE_RATE_NOTE,
    "credit_note": invoicing.CREDIT_NOTE_NOTE,
    "credit_line": invoicing.CREDIT_LINE,
    "proration_rule": rating.PRORATION_RULE,
    "commitment_proration_rule": rating.COMMITMENT_PRORATION_RULE,
    "credit_rule": rating.CREDIT_RULE,
    "unused_time_line": rating.UNUSED_TIME_LINE,
    "late_usage_line": rating.LATE_USAGE_LINE,
    "period_line": rating.PERIOD_LINE,
    "coupon_line": rating.COUPON_LINE,
}
# the names the platform gives tax lines: translated on tax lines only (a charge may be called "Tax")
TAX_NAMES: dict[str, str] = {
    "vat_name": tax.VAT_NAME,
    "consumption_tax_name": tax.CONSUMPTION_TAX_NAME,
    "sales_tax_name": tax.SALES_TAX_NAME,
    "tax_name": tax.TAX_NAME,
}

TRANSLATIONS: dict[str, dict[str, str]] = {
    "pt-BR": {
        "vat_name": "IVA",
        "consumption_tax_name": "Imposto sobre o consumo",
        "sales_tax_name": "Imposto sobre vendas",
        "tax_name": "Imposto",
        "credit_line": "Crédito: {description}",
        "proration_rule": "proporcional por dia: {days}/{of} dias de {start} a {last_day}",
        "commitment_proration_rule": "compromisso proporcional por dia: {days}/{of} dias",
        "credit_rule": "crédito por dia: {days} dos {of} dias faturados por {amount} ({billed_start} a "
                       "{billed_last_day})",
        "unused_time_line": "{name}: tempo não utilizado de {start} a {last_day}",
        "late_usage_line": "{description}: uso tardio de {start} a {last_day}",
        "period_line": "{description}: {start} a {last_day}",
        "coupon_line": "Cupom {code}: {name}",
        "eu_reverse_charge": "Autoliquidação (reverse charge): o adquirente é o devedor do IVA nos termos do "
                             "artigo 196 da Diretiva 2006/112/CE do Conselho.",
        "gb_reverse_charge": "Autoliquidação (reverse charge): o cliente declara o IVA (VAT Act 1994, seção 8; "
                             "HMRC VAT Notice 741A).",
        "reverse_charge": "Autoliquidação",
        "outside_scope": "Fora do campo de incidência ({tax}): o local da prestação é o país do cliente ({country}).",
        "exempt_customer": "Cliente isento: nenhum imposto cobrado.",
        "oss": "IVA de {country} cobrado à alíquota do cliente (local da prestação: o país do cliente).",
        "japan_off": "Imposto japonês sobre o consumo não cobrado nesta fatura.",
        "supplier_vat": "Número de IVA do fornecedor: {number}",
        "customer_vat": "Número de IVA do cliente: {number}",
        "supplier_tax_number": "Número fiscal do fornecedor: {number}",
        "registration_number": "Número de registro {label}: {number}",
        "jp_registration": "Número de registro: {number}",
        "no_sales_tax": "Nenhum imposto sobre vendas cobrado: o vendedor não está registrado para recolher "
                        "imposto em {where}.",
        "exchange_rate": "Taxa de câmbio: {rate}.",
        "credit_note": "Nota de crédito da fatura {number} de {date}: {reason}",
    },
    "es": {
        "vat_name": "IVA",
        "consumption_tax_name": "Impuesto sobre el consumo",
        "sales_tax_name": "Impuesto sobre las ventas",
        "tax_name": "Impuesto",
        "credit_line": "Abono: {description}",
        "proration_rule": "prorrateado por días: {days}/{of} días del {start} al {last_day}",
        "commitment_proration_rule": "compromiso prorrateado por días: {days}/{of} días",
        "credit_rule": "abono por días: {days} de los {of} días facturados por {amount} (del {billed_start} al "
                       "{billed_last_day})",
        "unused_time_line": "{name}: tiempo no utilizado del {start} al {last_day}",
        "late_usage_line": "{description}: uso tardío del {start} al {last_day}",
        "period_line": "{description}: del {start} al {last_day}",
        "coupon_line": "Cupón {code}: {name}",
        "eu_reverse_charge": "Inversión del sujeto pasivo: el destinatario es el deudor del IVA conforme al "
                             "artículo 196 de la Directiva 2006/112/CE del Consejo.",
        "gb_reverse_charge": "Inversión del sujeto pasivo: el cliente declara el IVA (VAT Act 1994, sección 8; "
                             "HMRC VAT Notice 741A).",
        "reverse_charge": "Inversión del sujeto pasivo",
        "outside_scope": "No sujeto ({tax}): el lugar de la prestación es el país del cliente ({country}).",
        "exempt_customer": "Cliente exento: no se repercute ningún impuesto.",
        "oss": "IVA de {country} aplicado al tipo del cliente (lugar de la prestación: el país del cliente).",
        "japan_off": "No se aplica el impuesto japonés sobre el consumo en esta factura.",
        "supplier_vat": "NIF-IVA del proveedor: {number}",
        "customer_vat": "NIF-IVA del cliente: {number}",
        "supplier_tax_number": "Número fiscal del proveedor: {number}",
        "registration_number": "Número de registro {label}: {number}",
        "jp_registration": "Número de registro: {number}",
        "no_sales_tax": "No se cobra impuesto sobre las ventas: el vendedor no está registrado para recaudarlo "
                        "en {where}.",
        "exchange_rate": "Tipo de cambio: {rate}.",
        "credit_note": "Nota de crédito de la factura {number} del {date}: {reason}",
    },
    "fr": {
        "vat_name": "TVA",
        "consumption_tax_name": "Taxe sur la consommation",
        "sales_tax_name": "Taxe de vente",
        "tax_name": "Taxe",
        "credit_line": "Avoir : {description}",
        "proration_rule": "au prorata des jours : {days}/{of} jours du {start} au {last_day}",
        "commitment_proration_rule": "engagement au prorata des jours : {days}/{of} jours",
        "credit_rule": "crédit au prorata des jours : {days} des {of} jours facturés pour {amount} (du "
                       "{billed_start} au {billed_last_day})",
        "unused_time_line": "{name} : période non utilisée du {start} au {last_day}",
        "late_usage_line": "{description} : consommation tardive du {start} au {last_day}",
        "period_line": "{description} : du {start} au {last_day}",
        "coupon_line": "Coupon {code} : {name}",
        "eu_reverse_charge": "Autoliquidation : la TVA est due par le preneur en application de l’article 196 "
                             "de la directive 2006/112/CE du Conseil.",
        "gb_reverse_charge": "Autoliquidation : le client déclare la TVA (VAT Act 1994, section 8 ; "
                             "HMRC VAT Notice 741A).",
        "reverse_charge": "Autoliquidation",
        "outside_scope": "Hors champ ({tax}) : le lieu de la prestation est le pays du client ({country}).",
        "exempt_customer": "Client exonéré : aucune taxe facturée.",
        "oss": "TVA de {country} facturée au taux du client (lieu de la prestation : le pays du client).",
        "japan_off": "Taxe japonaise sur la consommation non facturée sur cette facture.",
        "supplier_vat": "N° de TVA du fournisseur : {number}",
        "customer_vat": "N° de TVA du client : {number}",
        "supplier_tax_number": "Numéro fiscal du fournisseur : {number}",
        "registration_number": "Numéro d’inscription {label} : {number}",
        "jp_registration": "Numéro d’enregistrement : {number}",
        "no_sales_tax": "Aucune taxe de vente facturée : le vendeur n’est pas inscrit pour la percevoir "
                        "en {where}.",
        "exchange_rate": "Taux de change : {rate}.",
        "credit_note": "Avoir sur la facture {number} du {date} : {reason}",
    },
    "de": {
        "vat_name": "USt.",
        "consumption_tax_name": "Verbrauchsteuer",
        "sales_tax_name": "Sales Tax",
        "tax_name": "Steuer",
        "credit_line": "Gutschrift: {description}",
        "proration_rule": "tagesanteilig: {days}/{of} Tage vom {start} bis {last_day}",
        "commitment_proration_rule": "Mindestumsatz tagesanteilig: {days}/{of} Tage",
        "credit_rule": "Gutschrift tagesanteilig: {days} der {of} berechneten Tage für {amount} ({billed_start} bis "
                       "{billed_last_day})",
        "unused_time_line": "{name}: nicht genutzte Zeit vom {start} bis {last_day}",
        "late_usage_line": "{description}: nachträgliche Nutzung vom {start} bis {last_day}",
        "period_line": "{description}: {start} bis {last_day}",
        "coupon_line": "Gutschein {code}: {name}",
        "eu_reverse_charge": "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge): Der "
                             "Leistungsempfänger schuldet die Umsatzsteuer nach Artikel 196 der Richtlinie "
                             "2006/112/EG des Rates.",
        "gb_reverse_charge": "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge): Der Kunde erklärt "
                             "die Umsatzsteuer (VAT Act 1994, Section 8; HMRC VAT Notice 741A).",
        "reverse_charge": "Steuerschuldnerschaft des Leistungsempfängers",
        "outside_scope": "Nicht steuerbar ({tax}): Leistungsort ist das Land des Kunden ({country}).",
        "exempt_customer": "Steuerbefreiter Kunde: keine Steuer berechnet.",
        "oss": "Umsatzsteuer von {country} zum Satz des Kundenlandes berechnet (Leistungsort: Land des Kunden).",
        "japan_off": "Japanische Verbrauchsteuer wird auf dieser Rechnung nicht berechnet.",
        "supplier_vat": "USt-IdNr. des Leistenden: {number}",
        "customer_vat": "USt-IdNr. des Leistungsempfängers: {number}",
        "supplier_tax_number": "Steuernummer des Leistenden: {number}",
        "registration_number": "{label}-Registrierungsnummer: {number}",
        "jp_registration": "Registrierungsnummer: {number}",
        "no_sales_tax": "Keine Sales Tax berechnet: Der Verkäufer ist in {where} nicht zur Erhebung registriert.",
        "exchange_rate": "Wechselkurs: {rate}.",
        "credit_note": "Gutschrift zur Rechnung {number} vom {date}: {reason}",
    },
    "ja": {
        "vat_name": "付加価値税",
        "consumption_tax_name": "消費税",
        "sales_tax_name": "売上税",
        "tax_name": "税",
        "credit_line": "クレジット：{description}",
        "proration_rule": "日割り：{start}～{last_day}の{of}日中{days}日",
        "commitment_proration_rule": "最低利用額の日割り：{of}日中{days}日",
        "credit_rule": "日割りクレジット：{amount}で請求済みの{of}日（{billed_start}～{billed_last_day}）"
                       "のうち{days}日",
        "unused_time_line": "{name}：未使用期間 {start}～{last_day}",
        "late_usage_line": "{description}：{start}～{last_day}の遅延利用分",
        "period_line": "{description}：{start}～{last_day}",
        "coupon_line": "クーポン {code}：{name}",
        "eu_reverse_charge": "リバースチャージ：理事会指令2006/112/EC第196条に基づき、VATは顧客が納付します。",
        "gb_reverse_charge": "リバースチャージ：VATは顧客が申告します（VAT Act 1994 第8条、HMRC VAT Notice 741A）。",
        "reverse_charge": "リバースチャージ",
        "outside_scope": "{tax}の課税対象外：役務提供地は顧客の国（{country}）です。",
        "exempt_customer": "免税の顧客のため、税金は請求していません。",
        "oss": "{country}のVATを顧客の国の税率で請求しています（役務提供地：顧客の国）。",
        "japan_off": "本請求書では消費税を請求していません。",
        "supplier_vat": "売り手のVAT番号：{number}",
        "customer_vat": "顧客のVAT番号：{number}",
        "supplier_tax_number": "売り手の税番号：{number}",
        "registration_number": "{label}登録番号：{number}",
        "jp_registration": "登録番号：{number}",
        "no_sales_tax": "売上税は請求していません：売り手は{where}で徴税の登録をしていません。",
        "exchange_rate": "為替レート：{rate}。",
        "credit_note": "請求書{number}（{date}）に対するクレジットノート：{reason}",
    },
}

_FIELD = re.compile(r"\{(\w+)\}")
_DATE_FIELD = re.compile(r"(start|day|date)$")
_ISO_DATE = r"\d{4}-\d{2}-\d{2}"
_NESTED_FIELDS = ("description",)  # a line's own description, itself perhaps the platform's wording


def _pattern(template: str) -> re.Pattern[str]:
    """The English template as a regular expression: each `{name}` captures its value (a date field an
    ISO 8601 date)."""
    parts, seen, at = [], set(), 0
    for match in _FIELD.finditer(template):
        parts.append(re.escape(template[at:match.start()]))
        name = match.group(1)
        if name in seen:
            parts.append(f"(?P={name})")
        else:
            parts.append(f"(?P<{name}>{_ISO_DATE if _DATE_FIELD.search(name) else '.+?'})")
        seen.add(name)
        at = match.end()
    parts.append(re.escape(template[at:]))
    return re.compile("".join(parts), re.DOTALL)


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    # the longest fixed beginning first, so a wrapper ("Credit: {description}") is recognized before
    # the wording it wraps ("{name}: unused time ..."); then longer templates first
    def order(item: tuple[str, str]) -> tuple[int, int]:
        return -len(item[1].split("{", 1)[0]), -len(item[1])
    return [(key, _pattern(text)) for key, text in sorted(ENGLISH.items(), key=order)]


def localized(text: str, language: str | None, format_date: Callable[[date], str] | None = None) -> str:
    """`text` in `language` when it is the platform's own wording and a translation exists, else as
    stored. `format_date(date) -> str` prints a date value for the language (default: ISO 8601)."""
    catalog = TRANSLATIONS.get(catalog_language(language))
    if not catalog:
        return text
    for key, pattern in _patterns():
        match = pattern.fullmatch(text)
        if match is None:
            continue
        values = match.groupdict()
        try:
            for name, value in values.items():
                if _DATE_FIELD.search(name):
                    values[name] = format_date(date.fromisoformat(value)) if format_date else value
                elif name in _NESTED_FIELDS:
                    values[name] = localized(value, language, format_date)
        except ValueError:  # shaped like a date but not one ("2025-13-45"): not the platform's wording
            continue
        return catalog[key].format(**values)
    return text


def localized_tax_name(name: str, language: str | None) -> str:
    """A tax line's name in `language` when the platform gave it ("VAT" -> "TVA"), else as stored."""
    key = next((key for key, english in TAX_NAMES.items() if english == name), None)
    return (TRANSLATIONS.get(catalog_language(language)) or {}).get(key, name) if key else name
