"""The ``pixelmerge`` command: one file per row, safe names, clear errors."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import open_image

from renderer import load_template, render
from renderer.pdf import pdf_text
from webapp.cli import main

PIXELMERGE = Path(sys.executable).parent / "pixelmerge"


@pytest.fixture
def card(demo_dir: Path) -> str:
    return str(demo_dir / "card.json")


@pytest.fixture
def rows_csv(demo_dir: Path) -> str:
    return str(demo_dir / "rows.csv")


@pytest.fixture(scope="module")
def demo_rows(demo_dir: Path) -> list[dict]:
    with (demo_dir / "rows.csv").open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input,
                              catch_exceptions=False)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def flat(text: str) -> str:
    return " ".join(text.split())


# --- render -----------------------------------------------------------------------------------

def test_render_writes_one_file_per_row(card, rows_csv, demo_rows, demo_assets, tmp_path):
    out = tmp_path / "out"
    result = run("render", card, "--data", rows_csv, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"rendered 4 of 4 rows into {out}" in result.stdout
    assert files(out) == ["1.png", "2.png", "3.png", "4.png"]
    for number in (1, 4):
        image = open_image((out / f"{number}.png").read_bytes())
        assert (image.format, image.size) == ("PNG", (1200, 630))
    # row 2 is drawn with row 2's data, exactly as the library draws it
    expected = render(load_template(card), demo_rows[1], assets=demo_assets)
    assert (out / "2.png").read_bytes() == expected.data


def test_render_names_files_with_an_expression_and_a_format(card, rows_csv, tmp_path):
    out = tmp_path / "out"
    result = run("render", card, "--data", rows_csv, "--out", out, "--name", "{{ sku }}",
                 "--format", "jpeg")
    assert result.exit_code == 0, result.output
    assert files(out) == ["A-100.jpg", "A-101.jpg", "A-102.jpg", "A-103.jpg"]
    image = open_image((out / "A-102.jpg").read_bytes())
    assert (image.format, image.size) == ("JPEG", (1200, 630))


def test_parallel_jobs_write_the_same_bytes(card, rows_csv, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert run("render", card, "--data", rows_csv, "--out", one, "--jobs", "1").exit_code == 0
    result = run("render", card, "--data", rows_csv, "--out", two, "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert files(one) == files(two) == ["1.png", "2.png", "3.png", "4.png"]
    for name in files(one):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_render_reads_a_json_file(card, tmp_path):
    data = tmp_path / "rows.json"
    data.write_text(json.dumps([{"sku": "J1", "title": "From JSON", "price": 10},
                                {"variables": {"sku": "J2", "title": "Wrapped", "price": "20"}}]))
    out = tmp_path / "out"
    result = run("render", card, "--data", data, "--out", out, "--name", "{{ sku | lower }}",
                 "--format", "pdf")
    assert result.exit_code == 0, result.output
    assert files(out) == ["j1.pdf", "j2.pdf"]
    assert "From JSON" in pdf_text((out / "j1.pdf").read_bytes())[0]
    assert "$18.00" in pdf_text((out / "j2.pdf").read_bytes())[0]


@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_render_reads_json_from_stdin(card, tmp_path, bom):
    rows = [{"sku": "s1", "title": "Piped"}, {"sku": "s2", "title": "In"}]
    out = tmp_path / "out"
    result = run("render", card, "--data", "-", "--out", out, "--name", "{{ sku }}",
                 input=bom + json.dumps(rows))
    assert result.exit_code == 0, result.output
    assert files(out) == ["s1.png", "s2.png"]


@pytest.mark.parametrize("bom", ["", "\ufeff"])  # Excel writes CSV with a byte-order mark
def test_render_reads_csv_from_stdin(card, rows_csv, tmp_path, bom):
    out = tmp_path / "out"
    result = run("render", card, "--data", "-", "--out", out, "--name", "{{ sku }}",
                 input=bom + Path(rows_csv).read_text(encoding="utf-8"))
    assert result.exit_code == 0, result.output
    assert files(out) == ["A-100.png", "A-101.png", "A-102.png", "A-103.png"]


def test_a_bad_row_fails_alone_and_is_named(card, tmp_path):
    rows = [{"title": "Good", "price": "10"}, {"title": "Bad", "price": "abc"},
            {"title": "Also good", "price": 5}]
    out = tmp_path / "out"
    result = run("render", card, "--data", "-", "--out", out, input=json.dumps(rows))
    assert result.exit_code != 0
    errors = flat(result.stderr)
    assert "row 2" in errors and "'abc' is not a number" in errors and "price" in errors
    assert "row 1" not in errors and "row 3" not in errors
    assert "rendered 2 of 3 rows" in result.stdout
    assert files(out) == ["1.png", "3.png"]  # the others are still written, and nothing partial


def test_a_malformed_template_exits_2_naming_the_file_and_the_place(card, tmp_path):
    folder = tmp_path / ("a-folder-with-a-rather-long-name-" * 3)
    folder.mkdir()
    template = json.loads(Path(card).read_text())
    template["layers"][2]["type"] = "texx"
    bad = folder / "bad.json"
    bad.write_text(json.dumps(template))
    for command in (["render", bad, "--data", "-", "--out", tmp_path / "out"],
                    ["validate", bad]):
        result = run(*command, input="[]")
        assert result.exit_code == 2
        assert str(bad) in result.stderr  # whole, on one line, whatever the console width
        assert "layers[2].type" in result.stderr and "texx" in result.stderr
    assert not (tmp_path / "out").exists()


def test_malformed_json_and_missing_files_exit_2(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"kind": "layered", "width": 10,')
    result = run("validate", broken)
    assert result.exit_code == 2
    assert str(broken) in result.stderr and "JSON" in result.stderr
    result = run("validate", tmp_path / "missing.json")
    assert result.exit_code == 2 and "missing.json" in result.stderr


def test_bad_data_exits_2(card, tmp_path):
    out = tmp_path / "out"
    result = run("render", card, "--data", tmp_path / "none.csv", "--out", out)
    assert result.exit_code == 2 and "none.csv" in result.stderr
    result = run("render", card, "--data", "-", "--out", out, input="[1, 2]")
    assert result.exit_code == 2 and "row 1" in result.stderr
    result = run("render", card, "--data", "-", "--out", out, "--format", "bmp", input="[]")
    assert result.exit_code == 2 and "bmp" in result.stderr


def test_validate_ok(card, demo_dir):
    result = run("validate", card)
    assert result.exit_code == 0
    assert result.stdout.strip() == ("ok: 'Product card' (layered, 1200x630, 6 layers, "
                                     "6 variables, sizes: story, square)")
    result = run("validate", demo_dir / "certificate.json")
    assert result.exit_code == 0 and "(html, 1123x794" in result.stdout


# --- file names -------------------------------------------------------------------------------

HOSTILE = ["../escaped", "../../../tmp/escaped", "/etc/escaped", "..", ".", "a/../../b",
           "sub\\dir", "dir/", " .hidden", "C:evil", "ok"]


def test_names_cannot_escape_the_output_folder(card, tmp_path):
    rows = [{"title": "x", "sku": sku} for sku in HOSTILE]
    root = tmp_path / "root"
    out = root / "deep" / "out"
    root.mkdir()
    result = run("render", card, "--data", "-", "--out", out, "--name", "{{ sku }}",
                 "--format", "gif", input=json.dumps(rows))
    assert result.exit_code == 0, result.output
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(p.parent == out for p in written), written
    assert len(written) == len(HOSTILE)  # one file per row, none overwritten
    assert all(not p.name.startswith(".") for p in written)
    assert "ok.gif" in files(out)
    assert "4.gif" in files(out) and "5.gif" in files(out)  # ".." and "." fall back to numbers


def test_duplicate_names_do_not_overwrite(card, tmp_path):
    rows = [{"title": f"t{i}", "sku": "same"} for i in range(3)] + [{"title": "blank"}]
    out = tmp_path / "out"
    result = run("render", card, "--data", "-", "--out", out, "--name", "{{ sku }}",
                 "--format", "gif", input=json.dumps(rows))
    assert result.exit_code == 0, result.output
    assert files(out) == ["4.gif", "same-2.gif", "same-3.gif", "same.gif"]
    assert len({(out / name).read_bytes() for name in files(out)}) == 4


def test_long_names_are_cut_to_a_file_name_the_disk_accepts(card, tmp_path):
    rows = [{"title": "x", "sku": "商品" * 100}, {"title": "y", "sku": "n" * 400}]
    out = tmp_path / "out"
    result = run("render", card, "--data", "-", "--out", out, "--name", "{{ sku }}",
                 "--format", "gif", input=json.dumps(rows))
    assert result.exit_code == 0, result.output
    names = files(out)
    assert len(names) == 2
    assert all(len(name.encode()) <= 255 for name in names)
    assert any(name.startswith("商品商品") for name in names)
    assert any(name.startswith("nnnn") for name in names)


# --- demo and the installed command --------------------------------------------------------------

def test_demo_writes_the_demo_files(tmp_path):
    out = tmp_path / "demo"
    result = run("demo", "--out", out)
    assert result.exit_code == 0, result.output
    assert files(out) == sorted(["card.png", "card-story.jpg", "card.pdf", "world.png",
                                 "countdown.gif", "certificate.pdf", "certificate.png"])
    assert open_image((out / "card-story.jpg").read_bytes()).size == (1080, 1920)
    gif = open_image((out / "countdown.gif").read_bytes())
    assert getattr(gif, "n_frames", 1) == 10
    assert "Ada Lovelace" in pdf_text((out / "certificate.pdf").read_bytes())[0]
    assert str(out.resolve()) in result.stdout


def test_the_installed_command(demo_dir, tmp_path):
    """The console script as a user runs it, from an unrelated folder, data on stdin."""
    assert PIXELMERGE.exists()
    shutil.copy(demo_dir / "card.json", tmp_path / "card.json")
    shutil.copy(demo_dir / "photo.jpg", tmp_path / "photo.jpg")
    shutil.copy(demo_dir / "logo.png", tmp_path / "logo.png")
    rows = io.StringIO()
    json.dump([{"sku": "cli-1", "title": "Piped title", "price": "12"}], rows)
    done = subprocess.run(
        [str(PIXELMERGE), "render", "card.json", "--data", "-", "--out", "out",
         "--name", "{{ sku }}", "--format", "pdf"],
        input=rows.getvalue(), capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "rendered 1 of 1 rows" in done.stdout
    text = pdf_text((tmp_path / "out" / "cli-1.pdf").read_bytes())[0]
    assert "Piped title" in text and "$10.80" in text
    done = subprocess.run([str(PIXELMERGE), "validate", "missing.json"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "missing.json" in done.stderr


def test_an_out_folder_that_cannot_be_made_is_a_clear_error(card, rows_csv, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where the folder should go")
    result = run("render", card, "--data", rows_csv, "--out", blocker / "cards")
    assert result.exit_code == 2
    assert "cannot create" in flat(result.output)
    assert "Traceback" not in result.output


def test_a_row_whose_file_cannot_be_written_fails_alone(card, rows_csv, tmp_path):
    out = tmp_path / "cards"
    (out / "2.png").mkdir(parents=True)  # a folder stands where row 2's file goes
    result = run("render", card, "--data", rows_csv, "--out", out)
    assert result.exit_code == 1
    assert "row 2: cannot write" in flat(result.output)
    assert sorted(p.name for p in out.iterdir()) == ["1.png", "2.png", "3.png", "4.png"]
    assert (out / "2.png").is_dir()
    assert not list(out.glob(".*.part"))
