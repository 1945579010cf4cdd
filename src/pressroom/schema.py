"""The key reference: every key of publication.yaml and of each kind of content file, with its
type, its default and what it does. `pressroom schema` prints it; README's key reference is this
text, and a test loads projects and checks that the loader reads exactly these keys."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    """One key: dotted path (``[]`` for each entry of a list), type, default, meaning.

    ``default`` is ``None`` for a required key, else the text shown as its default.
    """

    path: str
    type: str
    default: str | None
    meaning: str


REQUIRED = None
TEXT, MD, URL, EMAIL, DATE = "text", "Markdown text", "URL", "email address", "date (YYYY-MM-DD)"
TEXTS = "list of text"

PUBLICATION = (
    Key("title", TEXT, REQUIRED, "The publication's title."),
    Key("subtitle", TEXT, REQUIRED, "One line under the title (covers, site)."),
    Key("slug", "lowercase-words", REQUIRED, "Names the output files, e.g. back-care.epub."),
    Key("language", "language tag", REQUIRED, "e.g. en-GB; sets every output's language."),
    Key("identifier", TEXT, REQUIRED, "A unique book identifier, e.g. urn:uuid:…"),
    Key("date", DATE, REQUIRED, "Publication date; stamped on the outputs unless "
        "SOURCE_DATE_EPOCH is set."),
    Key("author.name", TEXT, REQUIRED, "Author shown on covers, bios and newsletters."),
    Key("author.role", TEXT, REQUIRED, "The author's role, e.g. Physiotherapist."),
    Key("author.bio", MD, REQUIRED, "About the author (ebook, handout; the site too unless "
        "short_bio is given)."),
    Key("author.short_bio", MD, "none", "A shorter bio for promotional places (the site's "
        "landing page), e.g. without treatments that may not be advertised."),
    Key("publisher", TEXT, REQUIRED, "The practice's name."),
    Key("rights", TEXT, REQUIRED, "Copyright line."),
    Key("description", TEXT, REQUIRED, "A short description (ebook metadata, site)."),
    Key("subjects", TEXTS, REQUIRED, "Subject keywords (at least one)."),
    Key("website", URL, REQUIRED, "The practice's website; the site is built for this address."),
    Key("contact.email", EMAIL, REQUIRED, "Where readers write to."),
    Key("contact.phone", TEXT, "none", "A phone number; when absent no output shows one."),
    Key("contact.address", TEXTS, REQUIRED, "Postal address, one line per item."),
    Key("newsletter.sender_name", TEXT, REQUIRED, "The From name of newsletters."),
    Key("newsletter.sender_address", EMAIL, REQUIRED, "The From address of newsletters."),
    Key("newsletter.reply_to", EMAIL, "none", "Reply-To address of newsletters."),
    Key("newsletter.signup_url", URL, REQUIRED, "Where readers join the newsletter (QR codes, "
        "links); a page of `website` gets a sign-up page on the site."),
    Key("newsletter.booking_url", URL, "none", "Where readers book an appointment; when absent "
        "no output offers booking."),
    Key("newsletter.fallback_name", TEXT, "there", "Greeting name for subscribers without one."),
    Key("disclaimer", MD, REQUIRED, "The medical disclaimer shown in every output."),
    Key("limitations", MD, "none", "What the evidence can and cannot say; when absent the "
        "callout is left out."),
    Key("cover_illustration", "path in content/", "first exercise's illustration",
        "The cover picture (SVG)."),
    Key("quick_reference", "routine slug", "the only daily routine", "Which daily routine the "
        "one-page quick reference shows (needed when there are several)."),
    Key("study.<name>", "text or number (one line)", "none", "Facts of a cited study, stated "
        "once; Markdown writes {study.<name>} to use them, e.g. {study.recruited}."),
    Key("restricted_terms", TEXTS, "Botox, Dysport, Bocouture, Azzalure, Xeomin, botulinum "
        "toxin", "Words `check` reports in promotional outputs (newsletters, the site's landing "
        "and sign-up pages); `check --strict` fails on them."),
    Key("paper", "a4 | letter", "a4", "Paper size of the PDFs."),
    Key("theme", TEXT, "default", "Theme folder: themes/NAME in the project, else built in."),
    Key("brand.name", TEXT, "publisher", "Short brand name (design token `name`)."),
    Key("brand.logo", "path in content/", "none", "The logo (SVG) on covers, site and email; "
        "when absent no logo is shown."),
    Key("brand.colours", "mapping of '#RRGGBB'", "the theme's", "Colour tokens to override, "
        "e.g. brand, brand_dark, accent, ink, tint (see themes/default/theme.yaml)."),
    Key("brand.fonts", "mapping", "the theme's", "Font tokens to override, shaped like "
        "theme.yaml's `fonts`; font files go in the overlay folder theme/."),
    Key("epub.page_list", "true | false", "true", "Mark where each page of the printed handout "
        "(the configured paper) begins in the ebook, with a page list in its navigation, so "
        "\"page 12 of the handout\" can be found in a reader; false leaves the handout's layout "
        "out of the ebook build."),
    Key("epub.certified_by", TEXT, "brand.name, else publisher", "Who declares the ebook's "
        "EPUB Accessibility 1.1 / WCAG 2.2 AA conformance (a11y:certifiedBy); the declaration "
        "is only made when the build's own accessibility checks pass."),
    Key("epub.certifier_credential", TEXT, "none", "A credential of that evaluator "
        "(a11y:certifierCredential); left out when absent."),
    Key("mail", "mapping", "none", "Sending settings (store, unsubscribe URL…): see Sending."),
    Key("smtp", "mapping", "none", "SMTP server settings, or several relays (`smtp.relays`): "
        "see Sending."),
)

ARTICLE = (
    Key("title", TEXT, REQUIRED, "The article's title."),
    Key("summary", TEXT, REQUIRED, "One sentence for contents pages."),
    Key("date", DATE, REQUIRED, "When it was written."),
    Key("order", "whole number", "100", "Position among the articles (lowest first)."),
)

EXERCISE = (
    Key("title", TEXT, REQUIRED, "The exercise's name."),
    Key("area", TEXT, REQUIRED, "Body area, e.g. Lower back."),
    Key("muscles", TEXTS, "none", "Muscles it works; when absent the row is left out."),
    Key("summary", "text (≤160)", REQUIRED, "One line under the title."),
    Key("hold_seconds", "whole number ≥0", "0", "Seconds to hold each repetition (0: no hold)."),
    Key("reps", "whole number ≥1", "none for a timed hold",
        "Repetitions per set; required unless hold_seconds is given."),
    Key("sets", "whole number ≥1", REQUIRED, "Number of sets."),
    Key("minutes", "number ≥0.25", REQUIRED, "About how long it takes."),
    Key("frequency", TEXT, REQUIRED, "How often, e.g. Daily."),
    Key("difficulty", "beginner | intermediate | advanced", REQUIRED, "Difficulty."),
    Key("order", "whole number", "100", "Position among the exercises (lowest first)."),
    Key("illustration.src", "path in content/", REQUIRED, "The illustration (SVG)."),
    Key("illustration.alt", TEXT, REQUIRED, "What the illustration shows, for screen readers."),
    Key("steps", f"{TEXTS} (≥2)", REQUIRED, "How to do it, one step per item."),
    Key("tips", TEXTS, "none", "Tips; left out when absent."),
    Key("mistakes", TEXTS, "none", "Common mistakes; left out when absent."),
    Key("cautions", TEXTS, "none", "When to take care; left out when absent."),
    Key("kind", "exercise | check", "exercise", "A check (e.g. a self-assessment) is not "
        "counted among the exercises on covers and the site."),
)

ROUTINE = (
    Key("title", TEXT, REQUIRED, "The routine's title."),
    Key("kind", "daily | programme", REQUIRED, "A daily routine (items) or a programme "
        "(phases); several of each kind may exist."),
    Key("summary", TEXT, REQUIRED, "One sentence about it."),
    Key("items[].exercise", "exercise slug", "required (daily)", "An exercise's file name."),
    Key("items[].minutes", "number ≥0.25", "required (daily)", "Minutes for this exercise."),
    Key("items[].note", "text (≤100)", "none", "What to do, in a few words (no numbers that "
        "contradict the dose: `check` warns)."),
    Key("items[].hold_seconds", "whole number ≥0", "the exercise's", "This routine's hold."),
    Key("items[].reps", "whole number ≥1", "the exercise's", "This routine's repetitions."),
    Key("items[].sets", "whole number ≥1", "the exercise's", "This routine's sets, e.g. 1."),
    Key("items[].frequency", TEXT, "the exercise's", "How often in this routine; `check` warns "
        "when it is more often than the exercise's frequency."),
    Key("phases[].name", TEXT, "required (programme)", "The phase's name."),
    Key("phases[].start_week", "whole number ≥1", "required (programme)", "First week."),
    Key("phases[].end_week", "whole number ≥1", "required (programme)", "Last week."),
    Key("phases[].frequency", TEXT, "required (programme)", "How often, e.g. Daily."),
    Key("phases[].minutes", "number ≥1", "required (programme)", "Minutes per session."),
    Key("phases[].exercises", "list of exercise slugs", "required (programme)",
        "The phase's exercises."),
    Key("phases[].note", TEXT, "required (programme)", "A note on the phase."),
)

NEWSLETTER = (
    Key("subject", "text (≤150)", REQUIRED, "The email's subject line."),
    Key("preheader", "text (≤200)", REQUIRED, "The preview text after the subject."),
    Key("date", DATE, REQUIRED, "The issue's date."),
    Key("number", "whole number ≥1", REQUIRED, "The issue number (unique)."),
    Key("featured", "list of exercise slugs", "none", "Exercises shown as cards."),
    Key("cta.label", TEXT, REQUIRED, "The button's text."),
    Key("cta.url", URL, REQUIRED, "The button's link (https:// or mailto:)."),
)

FILES = (
    ("content/publication.yaml", PUBLICATION),
    ("content/articles/*.md (front matter)", ARTICLE),
    ("content/exercises/*.md (front matter)", EXERCISE),
    ("content/routines/*.md (front matter)", ROUTINE),
    ("content/newsletters/*.md (front matter)", NEWSLETTER),
)

# Every documented key name (path parts), e.g. "sets", "illustration", "src".
KEY_NAMES = frozenset(part.removesuffix("[]") for _title, keys in FILES
                      for key in keys for part in key.path.split("."))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference_markdown() -> str:
    """The key reference as Markdown tables, one per file kind.

    Example::

        print(reference_markdown())   # what `pressroom schema` shows
    """
    parts = []
    for title, keys in FILES:
        rows = [f"#### `{title}`", "", "| Key | Type | Default | Meaning |", "|---|---|---|---|"]
        for key in keys:
            default = "required" if key.default is None else key.default
            rows.append(f"| `{key.path}` | {_cell(key.type)} | {_cell(default)} | "
                        f"{_cell(key.meaning)} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts) + "\n"
