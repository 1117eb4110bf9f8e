from tests.e2e.test_logs import *  # noqa
from tests.e2e.test_postgres import pg_fleet, pg_upload  # noqa


def test_probe_pg_large(pg_fleet, pg_upload):
    test_large_output_tail_is_capped_and_whole_log_is_kept(pg_fleet, pg_upload)


def test_probe_pg_stream(pg_fleet, pg_upload):
    test_output_is_streamed_while_the_hook_runs(pg_fleet, pg_upload)
