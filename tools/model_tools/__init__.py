"""What only the bench (tools/bench.py) needs of the model: the analytic FLOP count, the GPU-memory
estimate and the half-precision check. Beside the bench, not in ldm/, so the extension zip does
not ship them; tools/ is on the path when the bench runs and in the tests (pytest.ini)."""
