"""pySigma's Lucene backend, with two changes for our documents: case-insensitive strings go to
the ``.caseless`` multi-field (a lower-case normaliser, which also normalises wildcard and prefix
terms), lower-cased; and regular expressions are rewritten for Lucene
(:func:`detectors.sigma.lucene.lucene_regex`)."""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
)
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule
from sigma.types import (
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from detectors.model import FieldRef
from detectors.sigma.errors import CannotFire
from detectors.sigma.lucene import lucene_regex, split_flags
from detectors.sigma.pipeline import sysmon_pipeline
from shipper.sysmon.fields import CASELESS_PATHS, EMITTED_FIELDS

CASELESS_SUFFIX = ".caseless"
_EVENT_DATA = "winlog.event_data."
_IP_FIELDS = frozenset(f for f, t in EMITTED_FIELDS.items() if t == "ip")


def _negated(cond: ConditionItem | ConditionFieldEqualsValueExpression) -> bool:
    """Whether ``cond`` stands negated in a top-level conjunction of the rule's condition (the
    rule is "the rest AND cond" or "the rest AND NOT cond"), read from the root down: a NOT flips,
    AND (or OR under a NOT, by De Morgan) keeps it a conjunct. Anywhere else a post-filter on
    the hits cannot decide it."""
    chain = [p for p in cond.parent_chain() if isinstance(p, ConditionItem) and p.operator]
    negated = False
    for node in reversed(chain):
        if isinstance(node, ConditionNOT):
            negated = not negated
        elif len(node.args) > 1 and isinstance(node, ConditionAND) == negated:
            raise SigmaFeatureNotSupportedByBackendError(
                "|fieldref inside an 'or' (or under 'not' with 'and'): only a field comparison "
                "every match must pass can be checked on the hits"
            )
    return negated


def _exists_field(field: str) -> str:
    # a user object (User, ParentUser) is there when its name is
    return f"{field}.name" if field in ("user", "process.parent.user") else field


def has_caseless(field: str) -> bool:
    return field in CASELESS_PATHS or field.startswith(_EVENT_DATA)


def _ip_prefix(field: str, value: SigmaString) -> SigmaCIDRExpression:
    """``DestinationIp|startswith: '10.'`` → ``10.0.0.0/8``: an ip field holds no text."""
    parts = value.s
    text = parts[0] if parts and isinstance(parts[0], str) else ""
    rest = parts[1:]
    if not (rest == [SpecialChars.WILDCARD_MULTI] and text.endswith(".")):
        raise CannotFire(
            f"{field} is an ip field: only whole-octet prefixes of IPv4 addresses become CIDRs ({value})"
        )
    octets = text.rstrip(".").split(".")
    try:
        network = ipaddress.ip_network(
            ".".join([*octets, *["0"] * (4 - len(octets))]) + f"/{8 * len(octets)}"
        )
    except ValueError as exc:
        raise CannotFire(f"{field}: {value} is not an IPv4 prefix") from exc
    return SigmaCIDRExpression(str(network))


class SysmonLuceneBackend(LuceneBackend):
    """Lucene queries for the documents our shipper writes."""

    name: ClassVar[str] = "sysmon-detect Lucene"
    #: a correlation's base rules run as queries of their own: the same query as standalone
    finalize_correlation_subqueries = True

    def __init__(self, processing_pipeline: ProcessingPipeline | None = None, **kwargs: Any) -> None:
        super().__init__(processing_pipeline or sysmon_pipeline(), collect_errors=True, **kwargs)
        self.field_refs: list[FieldRef] = []  # of the rule converted last

    def convert_rule(
        self, rule: SigmaRule, output_format: str | None = None, callback: Any = None
    ) -> list[Any]:
        self.field_refs = []
        return super().convert_rule(rule, output_format, callback)

    def convert_condition_field_eq_field(  # type: ignore[override]  # (the stock type is wrong)
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        # Kept aside for the post-filter (detectors.postfilter). In the query it becomes what
        # cannot narrow the rule wrongly: "both fields exist" where the comparison must hold,
        # nothing (so its NOT is everything) where it must fail.
        ref = cond.value
        assert isinstance(ref, SigmaFieldReference)
        negated = _negated(cond)
        mode = {(False, False): "equals", (True, False): "startswith", (False, True): "endswith"}.get(
            (ref.starts_with, ref.ends_with), "contains"
        )
        self.field_refs.append(FieldRef(cond.field, ref.field, mode, negated))  # type: ignore[arg-type]
        one, other = (self.escape_and_quote_field(_exists_field(f)) for f in (cond.field, ref.field))
        if negated:
            return f"(_exists_:{one} AND NOT _exists_:{one})"
        return f"(_exists_:{one} AND _exists_:{other})"

    def convert_condition_field_eq_val(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        value = cond.value
        field = cond.field
        if field in _IP_FIELDS and isinstance(value, SigmaString) and value.contains_special():
            cond.value = _ip_prefix(field, value)
        elif (
            isinstance(value, SigmaString) and not isinstance(value, SigmaCasedString) and has_caseless(field)
        ):
            cond.field = field + CASELESS_SUFFIX
            cond.value = value.lower()
        elif isinstance(value, SigmaRegularExpression):
            pattern, inline = split_flags(str(value.regexp))
            ignore_case = inline or SigmaRegularExpressionFlag.IGNORECASE in value.flags
            if ignore_case and has_caseless(field):
                cond.field = field + CASELESS_SUFFIX
            elif ignore_case:
                raise CannotFire(f"{field} has no case-insensitive form for a |re|i match")
            cond.value = SigmaRegularExpression(lucene_regex(pattern, ignore_case=ignore_case))
        return super().convert_condition_field_eq_val(cond, state)

    def convert_condition_field_eq_val_str_case_sensitive(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        # |cased: the plain keyword is case-sensitive already
        return self.convert_condition_field_eq_val_str(cond, state)

    def decide_convert_condition_as_in_expression(self, cond: Any, state: ConversionState) -> bool:
        # lists go through convert_condition_field_eq_val one by one, so each value is adjusted
        return False

    def convert_condition_field_eq_expansion(
        self, cond: ConditionFieldEqualsValueExpression, state: ConversionState
    ) -> Any:
        # |windash and |base64offset: each variant on its own, OR-ed (the stock backend passes
        # the expansion itself on when it does not build an "in" list)
        expansion = cond.value
        assert isinstance(expansion, SigmaExpansion)
        variants = [ConditionFieldEqualsValueExpression(cond.field, v) for v in expansion.values]
        converted = self.convert_condition_or(ConditionOR(variants, cond.source), state)  # type: ignore[arg-type]
        # the new OR has no parent to compare precedence with: always group it
        return self.group_expression.format(expr=converted) if isinstance(converted, str) else converted
