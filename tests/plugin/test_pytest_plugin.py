"""The pytest plugin as a user meets it: a test file in a fresh directory, run by pytest in a subprocess.

``runpytest_subprocess`` loads plugins the way a user's pytest does (the ``pytest11`` entry point of the
installed package), with no conftest.py of ours in the way.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_example() -> str:
    text = README.read_text()
    marker = text.index("<!-- pytest-plugin-example")
    block = re.search(r"```python\n(.*?)```", text[marker:], re.DOTALL)
    assert block is not None
    return block.group(1)


def test_readme_example_shared_fresh_settings_and_start_failures(pytester: pytest.Pytester) -> None:
    # One user session with several test files (one pytest subprocess: each costs seconds): the README's example,
    # shared and fresh emulators, settings by marker and a data directory, and starts that fail.
    pytester.makepyfile(
        test_a_readme=_readme_example(),
        test_b_shared="""
        import urllib.request

        import pytest

        URLS = {}

        def get(url):
            with urllib.request.urlopen(url) as r:
                return r.status, r.read()

        def test_a(dicom_emulator):
            URLS["a"] = dicom_emulator.url
            assert get(dicom_emulator.url + "/health")[0] == 200
            assert dicom_emulator.dicomweb_url == dicom_emulator.url + "/v2"
            assert dicom_emulator.dicomweb_url_for("v1") == dicom_emulator.url + "/v1"

        def test_b_shares(dicom_emulator):
            assert dicom_emulator.url == URLS["a"]

        @pytest.mark.dicom_emulator(fresh=True)
        def test_c_fresh(dicom_emulator):
            assert dicom_emulator.url != URLS["a"]
            URLS["fresh"] = dicom_emulator.url

        def test_d_fresh_one_is_stopped():
            with pytest.raises(OSError):
                urllib.request.urlopen(URLS["fresh"] + "/health", timeout=5)

        @pytest.mark.dicom_emulator(loose=True)
        def test_e_other_settings(dicom_emulator):
            assert dicom_emulator.url != URLS["a"]
            assert dicom_emulator.settings["loose"] is True
            assert "'loose': True" in dicom_emulator.output()

        def test_f_data_dir(dicom_emulator_factory, tmp_path):
            emulator = dicom_emulator_factory(data_dir=tmp_path / "store", fresh=True)
            assert (tmp_path / "store" / "index.sqlite").is_file()
            assert "'blobs': 'memory'" not in emulator.output()
        """,
        test_c_failures="""
        import pytest

        @pytest.mark.dicom_emulator(database_url="postgresql://nobody@127.0.0.1:1/none")
        def test_no_database(dicom_emulator):
            pass

        @pytest.mark.dicom_emulator(no_such_setting=1)
        def test_unknown_setting(dicom_emulator):
            pass
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=9, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*dicom-emulator: error: cannot connect to PostgreSQL at postgresql+asyncpg://nobody:***@127.0.0.1:1/none*",
            "*dicom_emulator: unknown setting(s) no_such_setting (see dicom-emulator serve --help)",
        ]
    )


def test_ini_settings_and_fresh_for_every_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ndicom_emulator_settings =\n    loose=true\n    ae_title=SUITE_AE\n    fresh=true\n")
    pytester.makepyfile(
        test_a_defaults="""
        def test_defaults(dicom_emulator):
            assert dicom_emulator.settings["loose"] == "true"
            assert "'loose': True" in dicom_emulator.output()
        """,
        test_b_fresh="""
        import pytest

        URLS = []

        @pytest.mark.parametrize("n", [1, 2])
        def test_own_emulator(dicom_emulator, n):
            URLS.append(dicom_emulator.url)
            assert len(set(URLS)) == n

        @pytest.mark.dicom_emulator(fresh=False)
        def test_shared_on_request(dicom_emulator):
            assert dicom_emulator.url not in URLS
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4)
