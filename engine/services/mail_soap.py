"""SOAP by e-mail (CONTRACT §5): a SOAP envelope found in a mail is answered by the SOAP
service in-process, with the same WS-Security checks as over HTTP, and the answer is mailed
to the request's reply address (else its sender), optionally BCC'd, never to ourselves."""

from __future__ import annotations

from dataclasses import dataclass

from engine.adapters.mail_parsing import ParsedMail
from engine.adapters.mail_repository import MailRepository
from engine.adapters.mail_soap import REPLY_CHANNEL, SoapAnswer, compose_soap_reply
from engine.services.mail_outcome import MailOptions, Trace, Verdict, finish


@dataclass(frozen=True)
class SoapWork:
    """A SOAP request found in a mail: it runs after the mail's transaction, since the SOAP
    service opens transactions of its own."""

    inbox_id: int
    mail: ParsedMail
    rule_id: int | None


def run_soap(core, work: SoapWork) -> str | None:
    """Answers the request and records the mail's outcome with the answer queued."""
    endpoint = core.soap_mail_endpoint  # set by the composition roots (wire_soap_by_mail)
    if endpoint is None:
        verdict = Verdict("rejected", "SOAP by e-mail is not available: the SOAP service is "
                                      "not installed")
        return core.run(_finish_soap, work, verdict, None)
    answer = endpoint.answer(work.mail.soap.body, work.mail.soap.content_type)
    verdict = Verdict("rejected" if answer.fault else "applied",
                      "SOAP request answered with a fault" if answer.fault
                      else "SOAP request answered")
    return core.run(_finish_soap, work, verdict, answer)


def _finish_soap(uow, work: SoapWork, verdict: Verdict,
                 answer: SoapAnswer | None) -> str | None:
    row = MailRepository(uow.session).claim_pending([work.inbox_id], skip_locked=False)\
        .get(work.inbox_id)
    if row is None:
        return None  # another worker answered it meanwhile
    mail = work.mail
    if answer is not None:
        verdict = Verdict(verdict.status, f"{verdict.outcome}; {_queue_answer(uow, mail, answer)}")
    finish(uow, row, verdict, Trace(rule_id=work.rule_id), mail)
    uow.commit()
    return verdict.status


def _queue_answer(uow, mail: ParsedMail, answer: SoapAnswer) -> str:
    options = MailOptions.of(uow.context.settings)
    to = mail.reply_to or mail.from_addr
    if not to or to in options.own_addresses:
        return "response not mailed: the reply address is missing or our own"
    bcc = options.soap_bcc if options.soap_bcc not in options.own_addresses else None
    reply = compose_soap_reply(mail, answer.body, answer.content_type,
                               uow.context.settings.own_address, to, bcc)
    uow.repo.insert_outbox(channel=REPLY_CHANNEL, message={"eml": reply.as_string()},
                           next_attempt_at=uow.context.clock.now())
    uow.after_commit.append(uow.context.work_available.set)
    return f"response mailed to {to}" + (f" (BCC {bcc})" if bcc else "")
