"""The rule docs: complete for every rule, and docs/rules.md in sync with the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from keras_share.rules import ALL_RULES
from keras_share.rules.docs import rules_markdown
from keras_share.vocabulary import Severity

DOCS = Path(__file__).resolve().parents[1] / "docs" / "rules.md"


def test_docs_rules_md_is_generated_from_the_rules() -> None:
    assert DOCS.read_text(encoding="utf-8") == rules_markdown()


def test_rule_codes_and_names_are_unique() -> None:
    assert len({rule.code for rule in ALL_RULES}) == len({rule.name for rule in ALL_RULES}) == len(ALL_RULES)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.name)
def test_every_rule_documents_what_why_fix_and_an_example(rule) -> None:
    assert rule.severity in Severity
    assert rule.code.startswith("KS") and rule.code[2:].isdigit()
    for text in (rule.summary, rule.why, rule.fix, rule.example):
        assert text.strip()
