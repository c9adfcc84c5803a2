"""``iis-pipe app``: the local web page to click on images (see ``iis_pipe.app``)."""

from __future__ import annotations

import click

from iis_pipe import sources
from iis_pipe.cli.options import ByteSize, parse_options


@click.command()
@click.argument("source", nargs=-1)
@click.option("-p", "--predictor", default="grabcut", show_default=True,
              help="'grabcut' (classical, no weights) or a model checkpoint file (.pt).")
@click.option("-P", "--predictor-option", "popts", multiple=True, metavar="KEY=VALUE",
              help="Predictor option (repeatable), e.g. -P size=192 or -P device=cuda.")
@click.option("-f", "--format", "fmt", type=click.Choice(sorted(sources.FORMATS)),
              help="Layout of dataset folders; detected when omitted.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback exposes the page to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0: any free one).")
@click.option("--max-upload", type=ByteSize(), default="20MB", show_default=True,
              help="Largest uploaded file.")
def app(source, predictor, popts, fmt, host, port, max_upload):
    """Serve a page to click on the images of each SOURCE (prepared shards or dataset folders;
    none: uploads only) and watch the predictor's mask, with IoU, the robot's next click and
    NoC where there is ground truth; mask and clicks export for `evaluate --clicks`."""
    from iis_pipe.app import Catalog, Limits, make_app
    from iis_pipe.app.server import bind, is_loopback, server, url_of, warm_up
    from iis_pipe.predictors import make_predictor

    try:
        catalog = Catalog(list(source), format=fmt)
        pred = make_predictor(predictor, **parse_options(popts))  # loaded once, kept for every click
    except (ValueError, TypeError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from None
    local = is_loopback(host)
    if not local:
        click.echo(f"warning: listening on {host}: anyone who can reach this machine can use "
                   "the page and read the served images (there is no login)", err=True)
    try:
        sock = bind(host, port)
    except OSError as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}"
                                   + (" (try another --port)" if port else "")) from None
    warm_up()
    application = make_app(catalog, pred, predictor_name=predictor,
                           limits=Limits(max_upload=max_upload),
                           allowed_hosts=None if local else ["*"])
    click.echo(f"{len(catalog.entries())} images; predictor {predictor}")
    click.echo(f"open {url_of(sock)}  (Ctrl-C stops)")
    server(application).run(sockets=[sock])
