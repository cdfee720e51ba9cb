"""Bundle layouts the class knows: what each one bakes (mode, engines, storage drivers).

The same table as the CLI's src/layouts.ts (test/unit/layouts.test.ts runs both and compares
every layout, engine and driver), plus `rootfs`: the store is shipped as store.tar and the
image class ctrbake-rootfs-store extracts it into IMAGE_ROOTFS (the seed article's approach).
The first engine and driver of a row are its defaults; no drivers: any of the engine's.
"""

LAYOUTS = {
    # layout:      (mode,      engines,              storage drivers)
    "archive":     ("archive", ("docker", "podman"), ()),
    "overlay-vfs": ("store",   ("docker",),          ("vfs",)),
    "split":       ("store",   ("docker",),          ("overlay2",)),
    "copy":        ("store",   ("docker", "podman"), ()),
    "podman-ro":   ("store",   ("podman",),          ()),
    "containerd":  ("store",   ("containerd",),      ()),
    "rootfs":      ("store",   ("docker",),          ()),
}

ENGINE_DRIVERS = {"docker": ("overlay2", "vfs"), "podman": ("overlay", "vfs"), "containerd": ("overlayfs",)}
ENGINE_RDEPENDS = {"docker": "docker", "podman": "podman", "containerd": "containerd"}

# Where ctrbake's own builder (no engine, no root) is the default: the rows of the CLI's
# NATIVE_SCOPE in src/builder/scope.ts without `byDefault: false` (test/unit/layouts.test.ts
# compares the default builder of every mode, engine, driver and format).
# (mode, engine, storage driver or None for any, archive format or None for any)
NATIVE_SCOPE = (
    ("store", "docker", "overlay2", None),
    ("store", "docker", "vfs", None),
    ("store", "podman", "overlay", None),
    ("store", "containerd", "overlayfs", None),
)


def default_builder(mode, engine, driver, archive_format):
    """The builder ctrbake bake picks when none is named: native where it serves the bake."""
    for row_mode, row_engine, row_driver, row_format in NATIVE_SCOPE:
        if (row_mode == mode and row_engine == engine
                and row_driver in (None, driver)
                and (mode != "archive" or row_format in (None, archive_format))):
            return "native"
    return "engine"


def _row(layout):
    if layout not in LAYOUTS:
        raise ValueError(f"CTRBAKE_LAYOUT {layout!r} is not one of: {' '.join(LAYOUTS)}")
    return LAYOUTS[layout]


def defaults(layout):
    """(mode, engine, storage driver) a layout bakes when nothing else is set."""
    mode, engines, drivers = _row(layout)
    engine = engines[0]
    return (mode, engine, (drivers or ENGINE_DRIVERS[engine])[0])


def check(layout, mode, engine, driver):
    """Why this combination cannot work, or None."""
    want_mode, engines, drivers = _row(layout)
    if mode != want_mode:
        return f"CTRBAKE_LAYOUT {layout!r} needs CTRBAKE_MODE {want_mode!r}, not {mode!r}"
    if engine not in ENGINE_DRIVERS:
        return f"CTRBAKE_ENGINE {engine!r} is not one of: {' '.join(ENGINE_DRIVERS)}"
    if driver not in ENGINE_DRIVERS[engine]:
        return f"CTRBAKE_STORAGE_DRIVER {driver!r} does not go with engine {engine!r} (use one of: {' '.join(ENGINE_DRIVERS[engine])})"
    if engine not in engines:
        return f"CTRBAKE_LAYOUT {layout!r} needs CTRBAKE_ENGINE {' or '.join(repr(e) for e in engines)}"
    if drivers and driver not in drivers:
        return f"CTRBAKE_LAYOUT {layout!r} needs CTRBAKE_STORAGE_DRIVER {' or '.join(repr(x) for x in drivers)}"
    return None
