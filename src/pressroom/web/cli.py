"""`pressroom serve` (the site and subscription service, for development) and `pressroom
preview` (the live preview, or screenshots of each newsletter): thin commands over
pressroom.web."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import click

from pressroom.cli import project_options

if TYPE_CHECKING:
    from pressroom.config import Config

DEFAULT_HOST = "127.0.0.1"
SERVE_PORT = 8000
PREVIEW_PORT = 8001


def server_options(default_port: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--host and --port for a command that starts a local server."""
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func = click.option("--port", type=click.IntRange(0, 65535), default=default_port,
                            show_default=True, help="Port to listen on (0: any free port).")(func)
        func = click.option("--host", default=DEFAULT_HOST, show_default=True,
                            help="Address to listen on; 0.0.0.0 makes it reachable from other "
                                 "machines.")(func)
        return func
    return decorate


@click.command()
@project_options
@server_options(SERVE_PORT)
@click.option("--base-url", default=None,
              help="Where confirmation links in emails point (default: http://HOST:PORT).")
def serve(config: Config, host: str, port: int, base_url: str | None) -> None:
    """Serve the built site and the subscription service, for development.

    Serves OUT/site (run `pressroom build` first) with the sign-up form, email confirmation and
    one-click unsubscribe working against the project's subscriber store. Confirmation emails
    go to the smtp: server, or to OUT/outbox/transactional/ when none is configured.
    PRESSROOM_SECRET_KEY must be set. For production, run pressroom.web:create_app_from_env()
    under a WSGI server such as gunicorn instead.

    \b
    Examples:
      pressroom build && pressroom serve
      pressroom serve --project ../clinic --port 8080
      PRESSROOM_PROJECT=. gunicorn 'pressroom.web:create_app_from_env()'
    """
    from pressroom.web.app import create_app

    if not (config.out / "site" / "index.html").is_file():
        click.secho(f"warning: {config.out / 'site'} has no index.html yet; run `pressroom "
                    "build` first", fg="yellow", err=True)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    app = create_app(config, base_url=base_url or f"http://{shown}:{port}")
    click.echo(f"Serving {config.out / 'site'} at http://{shown}:{port}/ (Ctrl-C to stop)")
    app.run(host=host, port=port, debug=False, use_reloader=False)


@click.command()
@project_options
@click.option("--screenshots", is_flag=True,
              help="Write PNGs of each newsletter (375 and 800 px, light and dark) and exit.")
@server_options(PREVIEW_PORT)
def preview(config: Config, screenshots: bool, host: str, port: int) -> None:
    """Preview everything before it goes out, with live reload.

    Serves a local page showing each newsletter at phone and desktop widths in light and
    dark mode, the PDF pages and the EPUB chapters; it rebuilds and reloads when content or
    the theme changes. With --screenshots, headless Chromium instead writes PNGs of each issue
    (375 and 800 px, light and dark) into OUT/previews/ and exits; no server is started.

    \b
    Examples:
      pressroom preview                      # then open http://127.0.0.1:8001/
      pressroom preview --screenshots
      pressroom preview --project ../clinic --out /tmp/site --screenshots
    """
    if not screenshots:
        from pressroom.web.preview import run_preview

        click.echo("Building…", err=True)
        run_preview(config, host, port, on_ready=lambda url: click.echo(
            f"Preview at {url} (reloads when content/ or the theme changes; Ctrl-C to stop)"))
        return
    from pressroom.web.screenshots import take_screenshots

    paths = take_screenshots(config, config.out / "previews")
    click.echo(f"Wrote {len(paths)} screenshot(s) into {config.out / 'previews'}:")
    for path in paths:
        click.echo(f"  {path.name}")
