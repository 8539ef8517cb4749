"""Gallery tab: past runs newest first, a text filter, compare pairs side by side, votes, re-runs, export, delete."""

from __future__ import annotations

import time
import uuid

import gradio as gr

from demo.inputs import refused, reporter, whole
from demo.sessions import GPU, Sessions, session_id, stopped
from demo.zerogpu import GpuTime
from pipeline.engine import Engine
from pipeline.gallery import MAX_LIST, VOTES, Run, VoteSummary
from prompts.rewriter import Cancelled
from runtime.hub import ModelUnavailableError

HEADERS = ["id", "when", "kind", "status", "prompt", "seed", "vote", "why it failed"]
GALLERY = "gallery"  # listing, voting and export share no accelerator: their own concurrency group
PROMPT_CHARS = 80  # prompt shown in the table; the full text is in the run's details


def gallery_tab(engine: Engine, sessions: Sessions, gpu_time: GpuTime | None = None) -> None:
    """Build the tab's layout and events inside the caller's Blocks (re-runs under `gpu_time` on ZeroGPU)."""
    gallery = engine.gallery

    # -- handlers ----------------------------------------------------------------------------------
    def runs(query: str = "", limit: float = 50, request: gr.Request = None) -> list[dict]:
        """Past runs newest first, filtered by text in the prompts, kind, status or preset (or an id/seed)."""
        try:
            found = gallery.list(query or "", whole(limit, "limit"), sessions.scope(request))
        except ValueError as err:
            raise refused(str(err)) from None
        return [run.to_dict() for run in found]

    def table(records: list[dict] | None, request: gr.Request = None):
        rows = [_row(record) for record in records or []]
        return rows, summary_text(gallery.summary(sessions.scope(request)))

    def show(run_id: float | None, request: gr.Request = None):
        """Details of one run: a compare pair side by side, one video, or the previews of a variations run."""
        if run_id is None:
            return _empty_details()
        try:
            run = gallery.get(whole(run_id, "run id"), sessions.scope(request))
        except ValueError as err:
            raise refused(str(err)) from None
        pair = run.kind == "compare"
        first = run.files.get("raw" if pair else "video")
        previews = [
            (path, f"seed {role.removeprefix('preview-')}")
            for role, path in run.files.items()
            if role.startswith("preview-")
        ]
        elsewhere = [str(gallery.file(p)) for p in run.files.values() if gallery.file(p).exists() and not self_served(p)]
        note = f"\n\n**Not shown: outside the outputs folder** (written with `--out`): {', '.join(elsewhere)}"
        return (
            _describe(run) + (note if elsewhere else ""),
            gr.Video(value=self_served(first), label="Prompt as written" if pair else "Video", visible=not previews),
            gr.Video(value=self_served(run.files.get("rewritten")), visible=pair),
            gr.Gallery(value=[(self_served(p), c) for p, c in previews] or None, visible=bool(previews)),
            gr.Radio(value=run.vote, visible=pair and run.status == "completed"),
            run.to_dict(),
        )

    def self_served(stored: str | None) -> str | None:
        """A run file Gradio may serve (inside the outputs folder and present), else None."""
        if not stored:
            return None
        path = gallery.file(stored).resolve()
        if not path.exists() or not path.is_relative_to(engine.outputs.resolve()):
            return None
        return str(path)

    def vote(run_id: float, choice: str, request: gr.Request = None) -> dict:
        """Vote which side of a compare pair is better: raw, rewritten or tie. Returns the run and the summary."""
        try:
            run = gallery.vote(run_id, choice, sessions.scope(request))
        except ValueError as err:
            raise refused(str(err)) from None
        return {"run": run.to_dict(), "summary": gallery.summary(sessions.scope(request)).to_dict()}

    def rerun(
        run_id: float, new_seed: bool = False, request: gr.Request = None, progress=gr.Progress(track_tqdm=True)
    ) -> int:
        """Repeat a past run with its prompts and settings, with the same seed or a new one; returns the new run id."""
        cancel = sessions.current(request)
        if cancel.is_set():  # stopped while it waited for the GPU
            return stopped("Re-run")
        try:
            result = engine.rerun(
                whole(run_id, "run id"),
                new_seed=bool(new_seed),
                session=session_id(request),
                scope=sessions.scope(request),
                progress=reporter(progress),
                cancel=cancel,
            )
        except (ValueError, ModelUnavailableError, FileExistsError) as err:
            raise refused(str(err)) from None
        except Cancelled:
            return stopped("Re-run")
        return result

    if gpu_time is not None:
        rerun = gpu_time.wrap("rerun", rerun)

    def delete(run_id: float, request: gr.Request = None) -> str:
        """Delete a run and its files. Returns what was removed."""
        try:
            removed = gallery.delete(whole(run_id, "run id"), sessions.scope(request))
        except ValueError as err:
            raise refused(str(err)) from None
        return f"Deleted run {int(run_id)} and {len(removed)} file(s)."

    def export_csv(query: str = "", request: gr.Request = None) -> str:
        """Export the runs matching `query` (all when empty), oldest first, as CSV. Returns the file."""
        return export("csv", query, request)

    def export_jsonl(query: str = "", request: gr.Request = None) -> str:
        """Export the runs matching `query` (all when empty), oldest first, as JSON lines. Returns the file."""
        return export("jsonl", query, request)

    def export(fmt: str, query: str, request: gr.Request | None) -> str:
        folder = engine.outputs / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / f"runs-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.{fmt}"
        try:
            return str(gallery.export(fmt, dest, sessions.scope(request), query or ""))
        except ValueError as err:
            raise refused(str(err)) from None

    # -- layout ------------------------------------------------------------------------------------
    with gr.Tab("Gallery", id="gallery") as tab:
        if sessions.private_runs:
            gr.Markdown("Runs here are **private to this browser session**; reloading the page starts a new one.")
        with gr.Row():
            query = gr.Textbox(
                label="Filter", placeholder="words in the prompts, a kind (compare), a status, an id or seed", scale=4
            )
            limit = gr.Number(value=50, label=f"Show (1-{MAX_LIST})", precision=0, scale=1)
            refresh = gr.Button("Refresh", scale=1)
        summary = gr.Markdown(elem_id="vote-summary")
        listing = gr.Dataframe(
            headers=HEADERS,
            datatype=["number", *["str"] * (len(HEADERS) - 1)],
            interactive=False,
            wrap=True,
            elem_id="runs",
        )
        records = gr.JSON(label="Runs", visible=False)
        with gr.Row():
            run_id = gr.Number(label="Run id (pick a row)", precision=0, elem_id="run-id")
            new_seed = gr.Checkbox(label="Re-run with a new seed", value=False)
            rerun_btn = gr.Button("Re-run", variant="primary")
            delete_btn = gr.Button("Delete run and files", variant="stop")
        details = gr.Markdown()
        with gr.Row(equal_height=False):
            video_a = gr.Video(label="Video", interactive=False, loop=True)
            video_b = gr.Video(label="Rewritten prompt", interactive=False, loop=True, visible=False)
        previews = gr.Gallery(label="Previews", columns=4, visible=False, allow_preview=True)
        choice = gr.Radio(list(VOTES), label="Which is better?", visible=False, elem_id="vote")
        vote_out = gr.JSON(label="Vote", visible=False)
        note = gr.Markdown(label="Deleted")
        with gr.Accordion("Record", open=False):
            record = gr.JSON()
        with gr.Row():
            csv_btn = gr.Button("Export CSV", size="sm")
            jsonl_btn = gr.Button("Export JSONL", size="sm")
            exported = gr.File(label="Export")

    # -- events ------------------------------------------------------------------------------------
    group = {"concurrency_id": GALLERY, "concurrency_limit": 4}
    shown = [details, video_a, video_b, previews, choice, record]

    def fill_table(event):
        """After `event` (which lists runs into `records`), draw the table and the vote summary."""
        return event.then(table, records, [listing, summary], api_visibility="private", **group)

    def reload(event):
        """After `event`, list the runs again."""
        return fill_table(event.then(runs, [query, limit], records, api_visibility="private", **group))

    listing_runs = {"fn": runs, "inputs": [query, limit], "outputs": records, **group}
    fill_table(refresh.click(**listing_runs, api_name="runs"))
    fill_table(query.submit(**listing_runs, api_visibility="private"))
    fill_table(tab.select(**listing_runs, api_visibility="private"))
    listing.select(_picked, None, run_id, api_visibility="private", queue=False).then(
        show, run_id, shown, api_visibility="private", **group
    )
    run_id.submit(show, run_id, shown, api_visibility="private", **group)
    reload(choice.input(vote, [run_id, choice], vote_out, api_name="vote", **group))
    rerun_evt = sessions.start_on(rerun_btn.click).then(
        rerun, [run_id, new_seed], run_id, api_name="rerun", concurrency_id=GPU
    )
    reload(rerun_evt.success(show, run_id, shown, api_visibility="private", **group))
    reload(
        delete_btn.click(delete, run_id, note, api_name="delete_run", **group).success(
            _empty_details, None, shown, api_visibility="private", queue=False
        )
    )
    csv_btn.click(export_csv, query, exported, api_name="export_csv", **group)
    jsonl_btn.click(export_jsonl, query, exported, api_name="export_jsonl", **group)


def summary_text(summary: VoteSummary) -> str:
    """Votes on compare pairs and the win rate of the rewritten prompt over the raw one."""
    if summary.pairs == 0:
        return "**Votes:** no compare pairs yet. Use *Compare* to make one."
    rate = "no decisive votes yet" if summary.win_rate is None else f"{summary.win_rate:.0%} (ties left out)"
    return (
        f"**Votes** on {summary.pairs} compare pair(s): rewritten {summary.rewritten} · raw {summary.raw} · "
        f"tie {summary.tie} · **win rate of rewritten over raw: {rate}**"
    )


def _picked(evt: gr.SelectData) -> int | None:
    row = evt.row_value or []
    try:
        return int(float(row[0]))
    except (IndexError, TypeError, ValueError):
        return None


def _row(record: dict) -> list:
    seeds = record.get("seeds") or []
    seed = ", ".join(map(str, seeds)) if len(seeds) > 1 else ("" if record.get("seed") is None else str(record["seed"]))
    why = (record.get("error") or "") if record["status"] in ("failed", "expired") else ""
    return [
        record["id"],
        time.strftime("%Y-%m-%d %H:%M", time.localtime(record["created"])),
        record["kind"],
        record["status"],
        _shortened(record.get("prompt") or ""),
        seed,
        record.get("vote") or "",
        _shortened(why),
    ]


def _shortened(text: str) -> str:
    return text if len(text) <= PROMPT_CHARS else text[: PROMPT_CHARS - 1] + "…"


def _describe(run: Run) -> str:
    lines = [f"**Run {run.id}** · {run.kind} · {run.status} · {run.video_preset} · seed {run.seed}"]
    if run.kind == "compare":
        lines += [
            f"**Prompt as written** (left): {run.prompt}",
            f"**Rewritten prompt** (right): {run.rewritten or '—'}",
        ]
    else:
        lines += [f"**Prompt:** {run.prompt}"]
        if run.rewritten and run.rewritten != run.prompt:
            lines += [f"**Rewritten:** {run.rewritten}"]
    if run.parent_id:
        lines += [f"From run {run.parent_id}."]
    if run.error:
        lines += [f"**Note:** {run.error}"]
    return "\n\n".join(lines)


def _empty_details():
    return (
        "",
        gr.Video(value=None, visible=True),
        gr.Video(value=None, visible=False),
        gr.Gallery(value=None, visible=False),
        gr.Radio(value=None, visible=False),
        None,
    )
