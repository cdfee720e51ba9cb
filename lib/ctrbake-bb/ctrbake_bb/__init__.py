# Python helpers of the ctrbake BitBake classes. Pure functions (no datastore access) so they
# can be tested with plain python3; the classes pass them values read from `d`.
# conf/layer.conf makes them importable with `addpylib ${LAYERDIR}/lib/ctrbake-bb ctrbake_bb`.
BBIMPORTS = ["layouts", "platform", "refs"]
