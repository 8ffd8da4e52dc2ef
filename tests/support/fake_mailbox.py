"""Small local IMAP4rev1 and POP3 servers over one shared mailbox, for the bounce intake.

They speak enough of RFC 3501 and RFC 1939 for Python's imaplib and poplib, answering as
Dovecot does (greetings, the wrong-password replies, the mailbox-missing reply):

    box = FakeMailbox(user="bounces@herald.example", password="pw")
    box.add(raw_bytes)
    with FakeIMAPServer(box) as imap, FakePOP3Server(box) as pop3:
        ... connect to 127.0.0.1:imap.port / pop3.port ...
        box.raws()  # what is still in the mailbox

IMAP: CAPABILITY, NOOP, LOGIN, SELECT/EXAMINE (INBOX only), SEARCH (ALL, SEEN, UNSEEN,
DELETED, UNDELETED, NOT …), FETCH (RFC822, BODY[], BODY.PEEK[], FLAGS, UID; BODY[] and RFC822
set \\Seen), STORE (+FLAGS, -FLAGS, FLAGS, .SILENT), EXPUNGE, CLOSE, LOGOUT, and UID SEARCH /
FETCH / STORE. POP3: USER, PASS, STAT, LIST, UIDL, RETR, DELE, RSET, NOOP, CAPA, QUIT; as in
a real server, DELE takes effect only at QUIT, so a session that drops keeps its messages.
"""

from __future__ import annotations

import itertools
import re
import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class StoredMail:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


class FakeMailbox:
    def __init__(self, *, user: str, password: str, folder: str = "INBOX") -> None:
        self.user = user
        self.password = password
        self.folder = folder
        self.mails: list[StoredMail] = []
        self.lock = threading.RLock()
        self.logins = 0
        self._uids = itertools.count(1)

    def add(self, raw: bytes) -> None:
        with self.lock:
            self.mails.append(StoredMail(next(self._uids), raw.replace(b"\r\n", b"\n")))

    def raws(self) -> list[bytes]:
        with self.lock:
            return [mail.raw for mail in self.mails]

    def flags(self) -> list[set[str]]:
        with self.lock:
            return [set(mail.flags) for mail in self.mails]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mailbox: FakeMailbox, handler) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.mailbox = mailbox


class _Running:
    handler: type[socketserver.StreamRequestHandler]

    def __init__(self, mailbox: FakeMailbox) -> None:
        self.mailbox = mailbox
        self.server = _Server(mailbox, self.handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# --- IMAP -----------------------------------------------------------------------------------

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\([^)]*\))|(\S+)')


def _tokens(text: str) -> list[str]:
    found = []
    for quoted, group, atom in _TOKEN.findall(text):
        if quoted or (not group and not atom):
            found.append(re.sub(r"\\(.)", r"\1", quoted))
        else:
            found.append(group or atom)
    return found


class _IMAPHandler(socketserver.StreamRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.box = self.server.mailbox
        self.authenticated = False
        self.selected = False
        self.read_only = False

    def send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else line.encode()
        self.wfile.write(data + b"\r\n")

    def handle(self) -> None:
        self.send("* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            tag, _, rest = text.partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            uid = False
            if command == "UID":
                uid = True
                command, _, args = args.partition(" ")
                command = command.upper()
            try:
                done = self.dispatch(tag, command, args, uid)
            except Exception as exc:  # a test server: say what went wrong
                self.send(f"{tag} BAD Error in IMAP command {command}: {exc}")
                continue
            if done:
                return

    def dispatch(self, tag: str, command: str, args: str, uid: bool) -> bool:
        if command == "CAPABILITY":
            self.send("* CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN")
            self.send(f"{tag} OK Pre-login capabilities listed, post-login capabilities have more.")
        elif command == "NOOP":
            self.send(f"{tag} OK NOOP completed.")
        elif command == "LOGOUT":
            self.send("* BYE Logging out")
            self.send(f"{tag} OK Logout completed.")
            return True
        elif command == "LOGIN":
            user, password = [*_tokens(args), "", ""][:2]
            if user == self.box.user and password == self.box.password:
                self.authenticated = True
                self.box.logins += 1
                self.send(f"{tag} OK [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS] Logged in")
            else:
                self.send(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
        elif not self.authenticated:
            self.send(f"{tag} BAD Error in IMAP command {command}: Not authenticated.")
        elif command in ("SELECT", "EXAMINE"):
            self.select(tag, command, (_tokens(args) or [""])[0])
        elif not self.selected:
            self.send(f"{tag} BAD Error in IMAP command {command}: No mailbox selected.")
        elif command == "SEARCH":
            self.search(tag, args, uid)
        elif command == "FETCH":
            self.fetch(tag, args, uid)
        elif command == "STORE":
            self.store(tag, args, uid)
        elif command == "EXPUNGE":
            self.expunge(verbose=True)
            self.send(f"{tag} OK Expunge completed.")
        elif command == "CLOSE":
            self.expunge(verbose=False)
            self.selected = False
            self.send(f"{tag} OK Close completed.")
        else:
            self.send(f"{tag} BAD Error in IMAP command {command}: Unknown command.")
        return False

    def select(self, tag: str, command: str, folder: str) -> None:
        if folder.upper() != self.box.folder.upper():
            self.send(f"{tag} NO [NONEXISTENT] Mailbox doesn't exist: {folder}")
            return
        with self.box.lock:
            exists = len(self.box.mails)
            unseen = sum(1 for mail in self.box.mails if "\\Seen" not in mail.flags)
        self.selected = True
        self.read_only = command == "EXAMINE"
        self.send("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
        self.send(f"* {exists} EXISTS")
        self.send("* 0 RECENT")
        self.send(f"* OK [UNSEEN {unseen}] unseen")
        self.send("* OK [UIDVALIDITY 1796600000] UIDs valid")
        mode = "READ-ONLY" if self.read_only else "READ-WRITE"
        self.send(f"{tag} OK [{mode}] {command.capitalize()} completed.")

    def _numbers(self, spec: str, uid: bool) -> list[tuple[int, StoredMail]]:
        """(sequence number, mail) for a sequence set (or UID set)."""
        mails = list(enumerate(self.box.mails, start=1))
        if not mails:
            return []
        top = mails[-1][1].uid if uid else len(mails)
        wanted: set[int] = set()
        for part in spec.split(","):
            low, _, high = part.partition(":")
            a = top if low == "*" else int(low)
            b = a if not high else (top if high == "*" else int(high))
            wanted.update(range(min(a, b), max(a, b) + 1))
        return [(n, mail) for n, mail in mails if (mail.uid if uid else n) in wanted]

    def search(self, tag: str, args: str, uid: bool) -> None:
        keys = args.upper().split()
        if keys[:2] == ["CHARSET", "UTF-8"] or keys[:1] == ["CHARSET"]:
            keys = keys[2:]

        def matches(mail: StoredMail) -> bool:
            negate = False
            for key in keys:
                if key == "NOT":
                    negate = True
                    continue
                flag = {
                    "SEEN": "\\Seen",
                    "UNSEEN": "\\Seen",
                    "DELETED": "\\Deleted",
                    "UNDELETED": "\\Deleted",
                }.get(key)
                if key == "ALL":
                    result = True
                elif flag is None:
                    raise ValueError(f"unsupported search key {key}")
                else:
                    result = (flag in mail.flags) == (not key.startswith("UN"))
                if result == negate:
                    return False
                negate = False
            return True

        with self.box.lock:
            found = [
                str(mail.uid if uid else n)
                for n, mail in enumerate(self.box.mails, start=1)
                if matches(mail)
            ]
        self.send("* SEARCH" + "".join(f" {x}" for x in found))
        self.send(f"{tag} OK Search completed (0.001 + 0.000 secs).")

    def fetch(self, tag: str, args: str, uid: bool) -> None:
        spec, _, items = args.partition(" ")
        items = items.strip().strip("()").upper()
        with self.box.lock:
            for n, mail in self._numbers(spec, uid):
                parts: list[bytes] = []
                if uid or "UID" in items.split():
                    parts.append(f"UID {mail.uid}".encode())
                body_item = None
                if "BODY.PEEK[]" in items:
                    body_item = "BODY[]"
                elif "BODY[]" in items or "RFC822" in items.split():
                    body_item = "RFC822" if "RFC822" in items.split() else "BODY[]"
                    if not self.read_only:
                        mail.flags.add("\\Seen")
                if "FLAGS" in items.split():
                    parts.append(f"FLAGS ({' '.join(sorted(mail.flags))})".encode())
                if body_item:
                    data = _crlf(mail.raw)
                    parts.append(f"{body_item} {{{len(data)}}}\r\n".encode() + data)
                self.wfile.write(f"* {n} FETCH (".encode() + b" ".join(parts) + b")\r\n")
        self.send(f"{tag} OK Fetch completed.")

    def store(self, tag: str, args: str, uid: bool) -> None:
        if self.read_only:
            self.send(f"{tag} NO Mailbox is read-only.")
            return
        spec, _, rest = args.partition(" ")
        mode, _, flags_text = rest.partition(" ")
        flags = set(flags_text.strip().strip("()").split())
        silent = mode.upper().endswith(".SILENT")
        mode = mode.upper().removesuffix(".SILENT")
        with self.box.lock:
            for n, mail in self._numbers(spec, uid):
                if mode == "+FLAGS":
                    mail.flags |= flags
                elif mode == "-FLAGS":
                    mail.flags -= flags
                else:
                    mail.flags = set(flags)
                if not silent:
                    uid_part = f"UID {mail.uid} " if uid else ""
                    self.send(f"* {n} FETCH ({uid_part}FLAGS ({' '.join(sorted(mail.flags))}))")
        self.send(f"{tag} OK Store completed.")

    def expunge(self, *, verbose: bool) -> None:
        with self.box.lock:
            for n in range(len(self.box.mails), 0, -1):
                if "\\Deleted" in self.box.mails[n - 1].flags:
                    del self.box.mails[n - 1]
                    if verbose:
                        self.send(f"* {n} EXPUNGE")


class FakeIMAPServer(_Running):
    handler = _IMAPHandler


# --- POP3 -----------------------------------------------------------------------------------


class _POP3Handler(socketserver.StreamRequestHandler):
    server: _Server

    def send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else line.encode()
        self.wfile.write(data + b"\r\n")

    def handle(self) -> None:
        box = self.server.mailbox
        user = ""
        snapshot: list[StoredMail] | None = None  # the maildrop as the session sees it
        deleted: set[int] = set()
        self.send("+OK Dovecot ready.")
        while True:
            line = self.rfile.readline()
            if not line:
                return  # dropped without QUIT: nothing is deleted
            command, _, arg = line.decode("utf-8", "replace").strip().partition(" ")
            command = command.upper()
            if command == "CAPA":
                self.send("+OK")
                for capability in ("CAPA", "TOP", "UIDL", "RESP-CODES", "USER", "."):
                    self.send(capability)
            elif command == "QUIT":
                if snapshot is not None:
                    with box.lock:
                        gone = {snapshot[n - 1].uid for n in deleted}
                        box.mails = [mail for mail in box.mails if mail.uid not in gone]
                self.send("+OK Logging out, messages deleted." if deleted else "+OK Logging out.")
                return
            elif snapshot is None and command == "USER":
                user = arg
                self.send("+OK")
            elif snapshot is None and command == "PASS":
                if user == box.user and arg == box.password:
                    with box.lock:
                        snapshot = list(box.mails)
                        box.logins += 1
                    self.send("+OK Logged in.")
                else:
                    self.send("-ERR [AUTH] Authentication failed.")
            elif snapshot is None:
                self.send("-ERR Unknown AUTHORIZATION state command")
            elif command == "NOOP":
                self.send("+OK")
            elif command == "STAT":
                live = [m for n, m in enumerate(snapshot, 1) if n not in deleted]
                self.send(f"+OK {len(live)} {sum(len(_crlf(m.raw)) for m in live)}")
            elif command in ("LIST", "UIDL"):
                self.listing(command, arg, snapshot, deleted)
            elif command in ("RETR", "DELE"):
                number = int(arg) if arg.isdigit() else 0
                if not 1 <= number <= len(snapshot):
                    self.send(f"-ERR There's no message {arg}.")
                elif number in deleted:
                    self.send("-ERR Message is deleted.")
                elif command == "DELE":
                    deleted.add(number)
                    self.send("+OK Marked to be deleted.")
                else:
                    data = _crlf(snapshot[number - 1].raw)
                    self.send(f"+OK {len(data)} octets")
                    for body_line in (
                        data.split(b"\r\n")[:-1] if data.endswith(b"\r\n") else data.split(b"\r\n")
                    ):
                        self.send(b"." + body_line if body_line.startswith(b".") else body_line)
                    self.send(".")
            elif command == "RSET":
                deleted.clear()
                self.send("+OK")
            else:
                self.send(f"-ERR Unknown command: {command}")

    def listing(
        self, command: str, arg: str, snapshot: list[StoredMail], deleted: set[int]
    ) -> None:
        def value(n: int, mail: StoredMail) -> str:
            return str(len(_crlf(mail.raw))) if command == "LIST" else f"{mail.uid}"

        if arg:
            number = int(arg) if arg.isdigit() else 0
            if not 1 <= number <= len(snapshot) or number in deleted:
                self.send(f"-ERR There's no message {arg}.")
            else:
                self.send(f"+OK {number} {value(number, snapshot[number - 1])}")
            return
        self.send("+OK")
        for n, mail in enumerate(snapshot, 1):
            if n not in deleted:
                self.send(f"{n} {value(n, mail)}")
        self.send(".")


class FakePOP3Server(_Running):
    handler = _POP3Handler
