"""The ``nearcare fetch`` command and ``nearcare build --from DIR``, wired into the app by ``register``.

No ``from __future__ import annotations``: typer reads the annotations, which name ``cli``, local to
``register`` (importing it at the top would be circular).
"""

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from nearcare._errors import InputError


def _box(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError("--bbox must be WEST,SOUTH,EAST,NORTH in degrees", value=text) from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InputError("--bbox must have west < east and south < north, in degrees", value=text)
    return (west, south, east, north)


def register(app: typer.Typer) -> None:
    """Add ``fetch`` to ``app`` and give its ``build`` command the ``--from DIR`` option."""
    from nearcare import cli

    @app.command("fetch")
    def fetch_(
        area: Annotated[
            str | None,
            typer.Option(help="The area, as for `nearcare build --area` (QK1, 03W, E06000017...)."),
        ] = None,
        into: Annotated[Path, typer.Option(help="Folder for the area's files and fetched.json.")] = Path(
            "nearcare-data"
        ),
        cache: Annotated[
            Path | None,
            typer.Option(
                help="Cache of national files shared by all areas (default $NEARCARE_CACHE or ~/.cache/nearcare)."
            ),
        ] = None,
        manifest: Annotated[
            Path | None, typer.Option(help="A sources manifest (TOML) to use instead of the bundled one.")
        ] = None,
        kind: Annotated[
            list[str] | None,
            typer.Option(help="Fetch only this kind (repeat for several; includes optional ones)."),
        ] = None,
        list_: Annotated[
            bool, typer.Option("--list", help="Print what would be fetched, and from where.")
        ] = False,
        offline: Annotated[bool, typer.Option(help="Use only the cache; say what is missing.")] = False,
        bbox: Annotated[
            str | None,
            typer.Option(help="WEST,SOUTH,EAST,NORTH for the OpenStreetMap cut (default: the area's)."),
        ] = None,
        timeout_s: Annotated[
            float, cli._number("Seconds to wait for the server.", 0, 3600, above=True, unit=" s")
        ] = 60.0,
        retries: Annotated[int, cli._number("Attempts after the first, resuming each time.", 0, 20)] = 3,
    ) -> None:
        """Download the public files an area needs (national files once, into a shared cache)."""
        from nearcare.fetch import default_cache, fetch_area, load_manifest, plan

        loaded = load_manifest(manifest)
        if list_:
            cli.console.print(f"manifest: {loaded.path}", markup=False, highlight=False)
            for source in plan(loaded, kind):
                size = f"about {source.size_mb:g} MB, " if source.size_mb else ""
                cli.console.print(
                    f"{source.kind}: {source.name} ({size}{source.edition}; {source.licence})\n"
                    f"    url:  {source.url or 'none known: download it from the page'}\n"
                    f"    page: {source.page}",
                    markup=False,
                    highlight=False,
                )
            if loaded.osm and (not kind or "osm" in kind):
                cli.console.print(
                    f"osm: the Geofabrik extracts meeting the area plus {loaded.osm.buffer_km:g} km, cut to it "
                    f"({loaded.osm.edition}; {loaded.osm.licence})\n"
                    f"    url:  {loaded.osm.url_pattern}\n    page: {loaded.osm.page}",
                    markup=False,
                    highlight=False,
                )
            return
        if area is None:
            raise InputError("--area is required (or --list to see what would be fetched)")
        result = fetch_area(
            area,
            into=into,
            cache=cache or default_cache(),
            manifest=loaded,
            kinds=kind,
            offline=offline,
            box=_box(bbox),
            timeout_s=timeout_s,
            retries=retries,
            log=cli.console.print,
        )
        files = sum(len(p) for p in result.files.values())
        cli.console.print(f"fetched {files} files of {len(result.files)} kinds into {into}")
        for note in result.notes:
            cli.console.print(f"  note: {note}")
        for line in result.missing:
            cli.console.print(f"  missing: {line}")
        cli.console.print(f"next: nearcare build --area {area} --from {into} --store STORE")

    # `build` keeps its own options (read from its signature, so the two cannot drift) and gains
    # --from, which imports the fetched files into the store before the area is built.
    build_info = next(c for c in app.registered_commands if c.name == "build")
    build_only = build_info.callback
    assert build_only is not None
    original = inspect.signature(build_only, eval_str=True)
    from_option = inspect.Parameter(
        "from_",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            Path | None, typer.Option("--from", help="First import what `nearcare fetch` put in this folder.")
        ],
    )

    def build_(**params: Any) -> None:
        from_ = params.pop("from_")
        if from_ is not None:
            from nearcare.fetch import import_fetched

            with cli._opened(params["store"]) as opened:
                import_fetched(opened, from_, log=cli.console.print)
        build_only(**params)

    build_.__signature__ = original.replace(  # type: ignore[attr-defined]
        parameters=[
            *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in original.parameters.values()),
            from_option,
        ]
    )
    build_.__doc__ = build_only.__doc__
    build_info.callback = build_
