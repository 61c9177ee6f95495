"""What a process designer gets back for an uploaded BPMN file: every problem, with its line."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from engine.adapters.bpmn import ParsedModel, validate_bpmn
from engine.exceptions import BpmnInvalid

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"
FIXTURES = ROOT / "tests" / "fixtures" / "bpmn"
OPERATORS = ("provider.submit_request", "provider.send_update", "provider.send_closure",
             "provider.reject_resolution", "mail.send", "task.add_note", "task.set_field")
NEW_ASSIGNMENT = (PROCESSES / "liaison_new_assignment.bpmn").read_text()


def errors_of(xml: str | bytes, max_bytes: int = 2 * 1024 * 1024) -> list[dict]:
    data = xml.encode() if isinstance(xml, str) else xml
    with pytest.raises(BpmnInvalid) as caught:
        validate_bpmn(data, "upload.bpmn", OPERATORS, max_bytes=max_bytes)
    assert caught.value.errors, "BpmnInvalid must list its problems"
    return caught.value.errors


def line_of(xml: str, needle: str) -> int:
    return xml[: xml.index(needle)].count("\n") + 1


def script_process(script: str) -> str:
    return (FIXTURES / "script_task.bpmn").read_text().replace("SCRIPT", escape(script))


@pytest.mark.parametrize(("filename", "process_id", "operators"), [
    ("liaison_new_assignment.bpmn", "liaison_new_assignment",
     ("provider.submit_request", "task.add_note")),
    ("liaison_update_message.bpmn", "liaison_update_message", ("provider.send_update",)),
    ("liaison_closure.bpmn", "liaison_closure", ("provider.send_closure",)),
])
def test_bundled_processes_validate(filename, process_id, operators):
    model = validate_bpmn((PROCESSES / filename).read_bytes(), filename, OPERATORS)

    assert model.process_id == process_id
    assert model.name.startswith("Liaison: ")
    assert model.operators == operators
    assert model.user_tasks == ()


def test_user_tasks_are_listed_with_their_form_and_name_falls_back_to_id():
    model = validate_bpmn((FIXTURES / "user_task.bpmn").read_bytes(), "u.bpmn", OPERATORS)

    assert model == ParsedModel(process_id="user_task", name="user_task",
                                operators=("task.set_field",),
                                user_tasks=({"id": "review", "name": "Review the solution",
                                             "form": "review-schema.json"},))


def test_malformed_xml_reports_the_parser_message_and_line():
    xml = NEW_ASSIGNMENT.replace("</bpmn:process>", "</bpmn:proces>")

    [error] = errors_of(xml)

    assert "mismatch" in error["message"]
    assert error["line"] == line_of(xml, "</bpmn:proces>")


def test_external_entity_is_refused():
    xml = NEW_ASSIGNMENT.replace(
        "<bpmn:definitions", '<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        "<bpmn:definitions", 1).replace("Task assigned", "&xxe;")

    [error] = errors_of(xml)

    assert error == {"message": "DOCTYPE/entities are not allowed", "line": 2}


def test_billion_laughs_is_refused_before_expansion():
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    xml = ('<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY l0 "ha">' + entities + "]>\n"
           + NEW_ASSIGNMENT.split("\n", 1)[1].replace("Task assigned", "&l9;"))

    [error] = errors_of(xml)

    assert error["message"] == "DOCTYPE/entities are not allowed"


def test_oversized_file_is_refused():
    [error] = errors_of(NEW_ASSIGNMENT, max_bytes=1000)

    assert "1,000" in error["message"]


def test_file_without_an_executable_process_is_refused():
    xml = NEW_ASSIGNMENT.replace('isExecutable="true"', 'isExecutable="false"')

    [error] = errors_of(xml)

    assert "no executable process" in error["message"]


def test_file_with_two_executable_processes_is_refused():
    second = ('<bpmn:process id="other" isExecutable="true"><bpmn:startEvent id="s2" />'
              "</bpmn:process>\n  <bpmndi:BPMNDiagram")
    xml = NEW_ASSIGNMENT.replace("<bpmndi:BPMNDiagram", second, 1)

    [error] = errors_of(xml)

    assert "more than one executable process" in error["message"]
    assert "other" in error["message"]
    assert error["line"] == line_of(xml, '<bpmn:process id="other"')


def test_unknown_operator_is_named_with_its_line():
    xml = NEW_ASSIGNMENT.replace('id="task.add_note"', 'id="task.explode"')

    [error] = errors_of(xml)

    assert "task.explode" in error["message"] and "add_escalation_note" in error["message"]
    assert error["line"] == line_of(xml, 'id="task.explode"')


def test_service_task_without_operator_is_refused():
    xml = NEW_ASSIGNMENT.replace(
        '<spiffworkflow:serviceTaskOperator id="provider.submit_request" '
        'resultVariable="submit_result" />', "")

    [error] = errors_of(xml)

    assert "submit_request" in error["message"] and "operator" in error["message"]
    assert error["line"] == line_of(xml, '<bpmn:serviceTask id="submit_request"')


def test_unsupported_element_reached_by_a_flow_is_refused_with_its_line():
    xml = NEW_ASSIGNMENT.replace(
        '<bpmn:endEvent id="escalated" name="Escalated">\n'
        '      <bpmn:incoming>flow_note_escalated</bpmn:incoming>\n    </bpmn:endEvent>',
        '<bpmn:complexGateway id="escalated" name="Escalated">\n'
        '      <bpmn:incoming>flow_note_escalated</bpmn:incoming>\n    </bpmn:complexGateway>')

    [error] = errors_of(xml)

    assert "complexGateway" in error["message"] and "escalated" in error["message"]
    assert error["line"] == line_of(xml, "<bpmn:complexGateway")


def test_sequence_flow_to_a_missing_element_is_named():
    xml = NEW_ASSIGNMENT.replace('targetRef="acknowledged"', 'targetRef="nowhere"')

    [error] = errors_of(xml)

    assert error["message"] == "sequenceFlow flow_wait_done targets missing element nowhere"
    assert error["line"] == line_of(xml, '<bpmn:sequenceFlow id="flow_wait_done"')


def test_script_syntax_error_points_at_the_line_in_the_file():
    xml = script_process("total = 1\ntotal = = 2")

    [error] = errors_of(xml)

    assert "syntax" in error["message"] and "run_script" in error["message"]
    assert error["line"] == line_of(xml, "total = = 2")


def test_import_in_a_script_is_refused_at_upload():
    xml = script_process("pid = __import__('os').getpid()")

    [error] = errors_of(xml)

    assert "__import__" in error["message"]
    assert error["line"] == line_of(xml, "pid = ")


def test_import_in_a_gateway_condition_is_refused_at_upload():
    xml = (FIXTURES / "gateway.bpmn").read_text().replace(
        "CONDITION", escape("__import__('os').system('true') == 0"))

    [error] = errors_of(xml)

    assert "__import__" in error["message"] and "when_urgent" in error["message"]
    assert error["line"] == line_of(xml, "<bpmn:conditionExpression>")


@pytest.mark.parametrize("expression", [
    "open('/etc/passwd').read()", "().__class__.__bases__", "getattr(task, 'id')",
    "globals()", "eval('1')",
])
def test_sandbox_escapes_in_timer_expressions_are_refused_at_upload(expression):
    xml = NEW_ASSIGNMENT.replace("<bpmn:timeDuration>escalate_after",
                                 "<bpmn:timeDuration>" + escape(expression))

    errors = errors_of(xml)

    assert all("no_acknowledgement" in e["message"] for e in errors)
    assert {e["line"] for e in errors} == {line_of(xml, "<bpmn:timeDuration>")}


def test_several_problems_are_reported_together_in_file_order():
    xml = NEW_ASSIGNMENT.replace('id="task.add_note"', 'id="task.explode"').replace(
        'escalate_after = "PT4H"', "import os")

    errors = errors_of(xml)

    assert [e["line"] for e in errors] == [line_of(xml, "import os"),
                                           line_of(xml, 'id="task.explode"')]
    assert "import" in errors[0]["message"] and "task.explode" in errors[1]["message"]
