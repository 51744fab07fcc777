"""The processing pipeline for our documents: a logsource category becomes its Sysmon event
codes, and every Sysmon field name the field our mapping writes (:mod:`detectors.sigma.schema`),
with the special fields rewritten by :mod:`detectors.sigma.values`."""

from __future__ import annotations

from dataclasses import dataclass, field

from sigma.conditions import ConditionOR
from sigma.correlations import SigmaCorrelationRule
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaLogSource, SigmaRule
from sigma.types import SigmaFieldReference

from detectors.sigma import schema, values
from detectors.sigma.errors import CannotFire

ALL_CODES: tuple[str, ...] = tuple(schema.FIELDS)
#: special fields a |fieldref may name: both are a user object the post-filter reads whole
_REF_SPECIAL = frozenset({"User", "ParentUser"})


def event_codes(logsource: SigmaLogSource) -> tuple[str, ...] | None:
    """The event codes a logsource stands for in our data; None when Sysmon never produces it."""
    if logsource.product not in (None, "windows"):
        return None
    if logsource.service == schema.SYSMON_SERVICE and logsource.category is None:
        return ALL_CODES
    if logsource.service not in (None, schema.SYSMON_SERVICE):
        return None
    if logsource.category is None:
        return None
    return schema.CATEGORIES.get(logsource.category)


@dataclass
class SysmonFields(DetectionItemTransformation):
    """Renames each field to ours for the rule's event codes; refuses a field we never carry."""

    _codes: tuple[str, ...] = field(default=(), init=False, compare=False)

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        if isinstance(rule, SigmaRule):
            self._codes = event_codes(rule.logsource) or ()
        super().apply(rule)

    def apply_detection_item(
        self, detection_item: SigmaDetectionItem
    ) -> SigmaDetectionItem | SigmaDetection | None:
        name = detection_item.field
        if name is None or "." in name:  # a keyword search, or a field already named our way
            return None
        targets = self._targets(name)
        if any(isinstance(v, SigmaFieldReference) for v in detection_item.value):
            self._field_ref(detection_item, targets)
            return None
        if name in schema.SPECIAL:
            rewritten = [values.translate(detection_item, t) for t in targets]
            return (
                rewritten[0]
                if len(rewritten) == 1
                else SigmaDetection(list(rewritten), item_linking=ConditionOR)
            )
        if len(targets) == 1:
            detection_item.field = targets[0]
            self.processing_item_applied(detection_item)
            return None
        copies: list[SigmaDetectionItem | SigmaDetection] = []
        for t in targets:
            copies.append(
                SigmaDetectionItem(
                    t,
                    [],
                    list(detection_item.value),
                    value_linking=detection_item.value_linking,
                    auto_modifiers=False,
                )
            )
        return SigmaDetection(copies, item_linking=ConditionOR)

    def _targets(self, name: str) -> list[str]:
        targets = sorted({t for t in schema.fields_for(self._codes, name).values() if t is not None})
        if not targets:
            codes = ", ".join(self._codes)
            raise CannotFire(f"field {name!r}: Sysmon events {codes} never carry it in our documents")
        return targets

    def _one_target(self, name: str, targets: list[str] | None = None) -> str:
        """A |fieldref side: one field of ours, read whole by the post-filter."""
        targets = targets if targets is not None else self._targets(name)
        if name in schema.SPECIAL and name not in _REF_SPECIAL:
            raise CannotFire(f"|fieldref on {name}: our documents rewrite its values")
        if len(targets) != 1:
            raise CannotFire(f"|fieldref on {name}: it is {', '.join(targets)} in our documents")
        return targets[0]

    def _field_ref(self, item: SigmaDetectionItem, targets: list[str]) -> None:
        if not all(isinstance(v, SigmaFieldReference) for v in item.value):
            raise CannotFire(f"{item.field}: |fieldref mixed with plain values")
        item.field = self._one_target(str(item.field), targets)
        item.value = [
            SigmaFieldReference(self._one_target(v.field), v.starts_with, v.ends_with)
            for v in item.value
            if isinstance(v, SigmaFieldReference)
        ]
        self.processing_item_applied(item)


def sysmon_pipeline() -> ProcessingPipeline:
    """Sigma field names → our ECS documents. The event code condition is added by the rule
    builder (:mod:`detectors.sigma.rules`), as a filter beside the converted query."""
    return ProcessingPipeline(
        name="sysmon-detect ECS documents",
        priority=20,
        items=[ProcessingItem(identifier="sysmon_fields", transformation=SysmonFields())],
    )
