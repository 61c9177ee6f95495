"""Stored state of a process instance: Spiff's JSON without the spec.

Part of the BPMN adapter (with bpmn.py and bpmn_validation.py, the only SpiffWorkflow
importers). The spec of a model version is parsed once and shared; an instance's state is
stored without it and restored onto the shared spec object, so neither storing nor loading
converts the spec (most of the cost of Spiff's own round trip, and 7 KB per instance).
"""

from __future__ import annotations

import json
import threading
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnWorkflowConverter,
    WorkflowConverter,
)
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG


class _SpecByReference(BpmnWorkflowConverter):
    """Leaves the spec out when storing; restores onto a spec object handed in by the loader.

    A state whose `spec` is a dict (stored by an older liaison) takes Spiff's own path.
    """

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct):
        if isinstance(dct.get("spec"), dict):
            return super().from_dict(dct)
        spec, subprocess_specs = dct.pop("spec"), dct.pop("subprocess_specs")
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class StateCodec:
    """Dumps and loads workflow state; one Spiff serializer per thread (it keeps mode flags)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _serializers(self) -> tuple[BpmnWorkflowSerializer, BpmnWorkflowSerializer]:
        pair = getattr(self._local, "pair", None)
        if pair is None:
            lean = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(
                {**SPIFF_CONFIG, BpmnWorkflow: _SpecByReference}))
            full = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
            pair = self._local.pair = (lean, full)
        return pair

    def registry(self):
        """Spiff's converter registry (for comparing specs, e.g. to migrate instances)."""
        return self._serializers()[1].registry

    def spec_json(self, spec, subprocess_specs) -> tuple[str, str]:
        """Spiff's own JSON of a spec, for states that must take the migration path."""
        full = json.loads(self._serializers()[1].serialize_json(BpmnWorkflow(spec,
                                                                              subprocess_specs)))
        return json.dumps(full["spec"]), json.dumps(full["subprocess_specs"])

    def dump(self, workflow: BpmnWorkflow) -> str:
        lean = self._serializers()[0]
        lean.registry._encoder_mode = True  # as serialize_json does: data values get typenames
        try:
            dct = lean.to_dict(workflow)
        finally:
            lean.registry._encoder_mode = False
        dct[lean.VERSION_KEY] = lean.VERSION
        return json.dumps(dct, cls=lean._encoder_cls, separators=(",", ":"))

    def load(self, state: str, spec, subprocess_specs, spec_json: str,
             subprocess_specs_json: str) -> BpmnWorkflow:
        lean = self._serializers()[0]
        dct = json.loads(state, cls=lean.json_decoder_cls)
        if dct.get(lean.VERSION_KEY) == lean.VERSION:
            dct["spec"], dct["subprocess_specs"] = spec, subprocess_specs
        else:  # stored by another Spiff version: Spiff migrates the dict form
            dct["spec"] = json.loads(spec_json)
            dct["subprocess_specs"] = json.loads(subprocess_specs_json)
            lean.migrate(dct)
        return lean.from_dict(dct)
