"""Lookalike senders: a From that imitates someone the user knows. Pure and bounded; the reader
asks it with the user's known correspondents (at most ``MAX_KNOWN`` of them).

Three signs, the first found is reported:
- the display name is a known correspondent's (or is a known address), the address is not;
- the domain has the same skeleton as a known domain without being it: confusable characters
  (Cyrillic "а" for Latin "a", "0" for "o", "rn" for "m"), accents, IDNA ``xn--`` labels
  decoded first (the idea of UTS #39 §4 skeletons, on a small table of the confusables that
  matter for Latin-script domains, not the whole Unicode data);
- the domain is within a small edit distance (Damerau: one edit, two for long domains) of a
  known domain, e.g. ``examp1e.com`` or ``exmaple.com`` for ``example.com``.
Nothing is said when the address itself is known, or when the domain is one of the known ones
(a correspondent at gmx.de and another at gmx.at are both real).

The MX judges every received message this way at delivery, per recipient, and keeps the
verdict with the message (``LookalikeVerdict``); a user's known correspondents are prepared
once (``Known``: name keys, skeletons) and reused for many messages."""

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

MAX_KNOWN = 500
MIN_NAME = 3  # shorter display names ("Jo") match too much to mean anything
MIN_DOMAIN = 5

# Characters that render like a Latin letter or digit in common fonts (from Unicode's
# confusables.txt, the Cyrillic, Greek and digit entries that imitate ASCII domain letters).
CONFUSABLE = str.maketrans({
    "а": "a", "ɑ": "a", "α": "a", "в": "b", "с": "c", "ϲ": "c", "ԁ": "d", "е": "e", "ε": "e",
    "ѐ": "e", "ё": "e", "һ": "h", "і": "i", "ı": "i", "ι": "i", "ӏ": "l", "ј": "j", "к": "k",
    "κ": "k", "м": "m", "п": "n", "η": "n", "о": "o", "ο": "o", "σ": "o", "0": "o", "р": "p",
    "ρ": "p", "ԛ": "q", "г": "r", "ѕ": "s", "т": "t", "τ": "t", "υ": "u", "ս": "u", "ν": "v",
    "ѵ": "v", "ԝ": "w", "ω": "w", "х": "x", "χ": "x", "у": "y", "γ": "y", "ү": "y", "ʐ": "z",
    "1": "l", "|": "l", "ǀ": "l", "5": "s", "$": "s", "_": "-", "‐": "-", "‑": "-",
    "–": "-", "—": "-", "．": ".", "。": ".",
})
# Pairs that read as one letter ("rn" as "m"); applied after the single characters.
DIGRAPHS = (("rn", "m"), ("vv", "w"), ("cl", "d"), ("ii", "u"))


def skeleton(text: str) -> str:
    """A form in which confusable strings are equal: compatibility-normalised, case-folded,
    accents dropped, confusable characters mapped to the Latin letter they imitate, "i" and
    "l" merged (they are the same stroke in many fonts)."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).translate(CONFUSABLE)
    for pair, letter in DIGRAPHS:
        text = text.replace(pair, letter)
    return text.replace("i", "l")


def _unicode_domain(domain: str) -> str:
    labels = []
    for label in domain.strip().rstrip(".").lower().split("."):
        if label.startswith("xn--"):
            try:
                label = label[4:].encode("ascii").decode("punycode")
            except (UnicodeError, ValueError):
                pass
        labels.append(label)
    return ".".join(labels)


def domain_skeleton(domain: str) -> str:
    return skeleton(_unicode_domain(domain))


def _name_key(name: str) -> str:
    return " ".join(skeleton(name).replace('"', " ").replace("'", " ").split())


def edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau (optimal string alignment) distance of ``a`` and ``b``, or ``limit + 1`` as soon
    as it is known to exceed ``limit`` (so a long pair costs little)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = ca != cb
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


NAME, DOMAIN = "name", "domain"


@dataclass(frozen=True)
class Lookalike:
    """``kind`` NAME: the display name is that of the known address ``imitated``; DOMAIN: the
    domain looks like the known domain ``imitated``."""

    kind: str
    from_name: str
    from_addr: str
    imitated: str

    @property
    def warning(self) -> str:
        if self.kind == NAME:
            return (f'The sender calls itself "{self.from_name.strip()}", like {self.imitated} '
                    f"whom you know, but writes from a different address ({self.from_addr}). "
                    "Check before you answer, open links or pay anything.")
        domain = _unicode_domain(_domain(self.from_addr))
        return (f"The sender's domain {domain} looks like {self.imitated}, which you know, but "
                "it is a different domain. Check before you answer, open links or pay anything.")


class Known:
    """A user's known correspondents, (address, name) pairs (at most ``MAX_KNOWN``), and the
    user's own domains (imitated too: a message "from the boss"), prepared for many checks."""

    def __init__(self, people: Iterable[tuple[str, str]], own_domains: Iterable[str] = ()):
        people = [(a.strip().lower(), n) for a, n in list(people)[:MAX_KNOWN] if "@" in a]
        self.addresses = {a for a, _ in people}
        # A display name (or a known address written as one) -> the address it belongs to.
        self.names: dict[str, str] = {}
        for address, name in people:
            self.names.setdefault(_name_key(name), address)
            self.names.setdefault(skeleton(address), address)
        self.names.pop("", None)
        self.domain_set = {_domain(a) for a in self.addresses} | {d.lower() for d in own_domains}
        self.domains = sorted(self.domain_set)
        self.shapes: dict[str, str] = {}
        for domain in self.domains:
            self.shapes.setdefault(domain_skeleton(domain), domain)


def find_lookalike(from_name: str, from_addr: str, known: "Known | Iterable[tuple[str, str]]",
                   own_domains: Iterable[str] = ()) -> Lookalike | None:
    """What is wrong with a message from ``from_name <from_addr>`` given the user's ``known``
    correspondents (a ``Known``, or (address, name) pairs with ``own_domains``); None when
    nothing looks wrong."""
    from_addr = from_addr.strip().lower()
    if "@" not in from_addr:
        return None
    if not isinstance(known, Known):
        known = Known(known, own_domains)
    if from_addr in known.addresses:
        return None
    name = _name_key(from_name)
    if len(name) >= MIN_NAME and name in known.names:
        return Lookalike(NAME, from_name.strip(), from_addr, known.names[name])
    domain = _domain(from_addr)
    if domain in known.domain_set or len(domain) < MIN_DOMAIN:
        return None
    shape = domain_skeleton(domain)
    if shape in known.shapes:
        return Lookalike(DOMAIN, from_name.strip(), from_addr, known.shapes[shape])
    for other in known.domains:
        limit = 1 if len(other) < 10 else 2
        if len(other) >= MIN_DOMAIN and edit_distance(domain, other, limit) <= limit:
            return Lookalike(DOMAIN, from_name.strip(), from_addr, other)
    return None
