"""The one place that names output files and public URLs: what a build calls its files, where
the site publishes them, the footer's address lines and the build's timestamp. Pure: it reads
the Config and the environment's SOURCE_DATE_EPOCH, and touches no file."""

from __future__ import annotations

import datetime as _dt
import os
import re

from pressroom.config import Config

FORMATS = ("epub", "pdf", "email", "site")  # what a build can make, in build order
DOWNLOADS = "downloads"  # the site's folder holding copies of the ebook and the PDFs
NEWSLETTERS = "newsletters"  # built issues in the output folder, web versions on the site
EMAIL_IMAGES = f"{NEWSLETTERS}/images"  # hosted PNG copies of the images emails show
_ISSUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def ebook_name(config: Config) -> str:
    """The ebook's file name: ``<slug>.epub``."""
    return f"{config.slug}.epub"


def handout_name(config: Config) -> str:
    """The printable handout's file name: ``<slug>-handout.pdf``."""
    return f"{config.slug}-handout.pdf"


def quickref_name(config: Config) -> str:
    """The one-page quick reference's file name: ``<slug>-quick-reference.pdf``."""
    return f"{config.slug}-quick-reference.pdf"


def download_names(config: Config, quick_reference: bool = True) -> list[str]:
    """The built files the site offers under ``downloads/``, in the order the landing page
    shows them (the quick reference only when the publication has a daily routine)."""
    names = [ebook_name(config), handout_name(config)]
    if quick_reference:
        names.append(quickref_name(config))
    return names


def download_path(name: str) -> str:
    """Where a download lives on the site, relative to its root: ``downloads/<name>``."""
    return f"{DOWNLOADS}/{name}"


def site_url(config: Config) -> str:
    """The public website without a trailing slash, the base of every absolute URL."""
    return config.website.rstrip("/")


def download_url(config: Config, name: str) -> str:
    """The absolute URL of one download (the ebook's back page links the handout)."""
    return f"{site_url(config)}/{download_path(name)}"


def issue_path(slug: str) -> str:
    """A newsletter issue's web version (and built email), relative to the site or output."""
    return f"{NEWSLETTERS}/{slug}.html"


def is_issue_name(name: str) -> bool:
    """True when ``name`` can name a built issue's files (letters, digits, ``.``, ``_``, ``-``;
    no path separators), as `send` and the preview take it from their users."""
    return bool(_ISSUE_NAME.fullmatch(name))


def issue_url(config: Config, slug: str) -> str:
    """The absolute URL of an issue's web version: what "view in browser" opens."""
    return f"{site_url(config)}/{issue_path(slug)}"


def email_image_url(config: Config, file_name: str) -> str:
    """The absolute URL of a hosted image an email shows (``newsletters/images/<name>``)."""
    return f"{site_url(config)}/{EMAIL_IMAGES}/{file_name}"


def unsubscribe_url(config: Config) -> str:
    """The subscription service's unsubscribe page on the public website (the default of
    ``mail.unsubscribe_url``; tokens are added as ``?t=``)."""
    return f"{site_url(config)}/unsubscribe"


def view_base_url(config: Config) -> str:
    """The folder of the issues' web versions (the default of ``mail.view_url``)."""
    return f"{site_url(config)}/{NEWSLETTERS}/"


def website_label(config: Config) -> str:
    """The website as printed for people: no scheme, no trailing slash."""
    return config.website.split("://", 1)[-1].rstrip("/")


def address_lines(config: Config) -> list[str]:
    """The postal address as footers print it: without its first line when that line is the
    publisher's name, which footers show already."""
    address = list(config.contact.address)
    if address and address[0] == config.publisher:
        address = address[1:]
    return address


def build_time(published: _dt.date) -> _dt.datetime:
    """The time stamped on outputs (naive UTC): SOURCE_DATE_EPOCH when set (reproducible
    builds), else midnight of the publication's ``date`` (so builds stay reproducible without
    it)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc).replace(tzinfo=None)
    return _dt.datetime(published.year, published.month, published.day)
