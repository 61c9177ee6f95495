"""Loop protection for inbound mail, before anything else (rules included): one Message-ID
is applied once, mail from our own address is refused, and a sender that floods us is
stopped by a rate limit (a mail loop). What the guards need to know of earlier mail is read
once per batch and kept up to date as the batch's mails are applied."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from engine.adapters.mail_parsing import ParsedMail
from engine.adapters.mail_repository import MailRepository
from engine.services.mail_outcome import MailOptions, Verdict

COUNTED = ("applied", "rejected", "skipped")  # what a later copy or the rate limit sees


@dataclass
class LoopGuard:
    options: MailOptions
    earlier: dict[str, int] = field(default_factory=dict)  # Message-ID -> first mail
    from_sender: Counter = field(default_factory=Counter)  # sender -> mails in the window

    @classmethod
    def for_batch(cls, uow, options: MailOptions,
                  mails: list[tuple[int, ParsedMail]]) -> LoopGuard:
        """Two queries for the whole batch: earlier mail with the same Message-IDs, and
        each sender's mail within the rate window before the batch."""
        if not mails:
            return cls(options)
        repo = MailRepository(uow.session)
        since = uow.context.clock.now() - options.rate_window
        first_id = min(inbox_id for inbox_id, _ in mails)
        senders = [mail.from_addr for _, mail in mails if mail.from_addr]
        return cls(options, repo.first_processed([mail.message_id for _, mail in mails]),
                   Counter(repo.count_by_sender(senders, since, first_id) if senders else {}))

    def verdict(self, mail: ParsedMail) -> Verdict | None:
        """Why the mail must not be applied, or None."""
        earlier = self.earlier.get(mail.message_id)
        if earlier is not None:
            return Verdict("duplicate", f"same Message-ID as inbound mail {earlier}; "
                                        "applied once")
        own = self.options.own_addresses
        sender = {mail.from_addr, (mail.return_path or "").lower()} & own
        if sender:
            return Verdict("rejected", f"mail from our own address {sender.pop()}")
        if mail.loop_header and mail.loop_header in own:
            return Verdict("rejected", "mail loop: X-Loop names our own address")
        if mail.from_addr and self.from_sender[mail.from_addr] >= self.options.rate_limit:
            return Verdict("rejected", f"rate limit: more than {self.options.rate_limit} mails "
                                       f"from {mail.from_addr} in {self.options.rate_window}; "
                                       "a mail loop?")
        return None

    def record(self, inbox_id: int, mail: ParsedMail, status: str) -> None:
        """Counts a mail of the batch once it has its outcome."""
        if status in COUNTED:
            self.earlier.setdefault(mail.message_id, inbox_id)
            if mail.from_addr:
                self.from_sender[mail.from_addr] += 1
