"""Every sentence the Studio shows, in one place (help texts, view intros, the Learn page)."""

import re

TITLE = "CLIPood Studio"
SUBTITLE = ("Fine-tune CLIP and watch what happens out of distribution: what plain fine-tuning gains and loses on "
            "styles and classes it never saw, and what CLIPood (margin metric softmax + Beta moving average) changes.")

DATA_INTRO = (
    "Pick what the model is fine-tuned on (**sources**) and what it is tested on but never sees (**targets**). "
    "The grid shows one real sample per domain and class; the bars show how many images each split holds.")
COLOUR_BIAS_HELP = (
    "The toy world's shortcut: in the source domains, each shape is drawn in its own shortcut colour with this "
    "probability (otherwise any colour; the two shapes of a misnamed pair share one colour). Fine-tuning can then "
    "learn colour instead of shape, which fails on the "
    "targets (sketch, painting, pixel art, infrared) where the colour is random or invisible. "
    "0 = no shortcut, 0.9 = strong (the default).")
SHOTS_HELP = "Training images per (class, source domain)."
EVAL_PER_HELP = "Evaluation images per (class, domain) in the fixed evaluation grid."
SETTING_HELP = {
    "domain_shift": "**Domain shift**: fine-tune on the source domains, test on the sources (id) and on unseen "
                    "target domains (ood).",
    "open_class": "**Open class**: fine-tune on the base classes only, test on base and on new classes (the "
                  "classifier is the text of the class names, so new classes are still possible).",
    "in_the_wild": "**In the wild**: base classes in the source domains for training; tests on the targets, with "
                   "base and new classes together.",
}

TRAIN_INTRO = (
    "Start a run: the curves update while it trains, **Stop** takes effect within one step and keeps a "
    "checkpoint you can **Resume**. Every run is saved and can be reopened below, also after a reload.")
WHATIF_HELP = ("Also keep Beta averages with β ∈ {0.1, 1, 4} (besides the run's own β), an EMA and WiSE-FT with "
               "α = 0.5 on the same "
               "trajectory, so after one run you see accuracy against β and α without retraining (each extra "
               "average is evaluated with the others, so the run takes longer).")
LAM_HELP = "Margin strength of the margin metric softmax (MMS); 0 turns it into plain cross-entropy."
BETA_HELP = "Beta(β, β) weights of the moving average; β < 1 keeps both the zero-shot and the final end."

MARGINS_INTRO = (
    "MMS adds to every **wrong** class j a margin λ·(1 − cos(t_y, t_j)) that depends on how far its text embedding is "
    "from the true class y: similar names (small distance) get a small margin, unrelated names a big one. "
    "Only the text tower is needed, so this works before any training. Hover a cell to read a pair.")

EMB_INTRO = (
    "A 2-D map (UMAP) of image embeddings of a stratified sample of evaluation images, under the zero-shot weights "
    "or a run's weights; with *beside zero-shot*, the run's map and zero-shot's side by side on one projection "
    "fitted on both, so each image can be followed from one to the other. Stars are the class texts (placed where "
    "their nearest images lie). Crosses (a symbol no class uses) are misclassified images. Click a point to see "
    "the image and its prediction.")

COMPARE_INTRO = (
    "Overlay saved runs, or run the teaching comparison on the embedded default: plain fine-tuning (which also "
    "yields WiSE-FT, the halfway point between its two ends) and CLIPood, same seed and data. Each curve is the "
    "method's output weights (last weights for fine-tuning, the Beta average for CLIPood), evaluated at the start "
    "and end of the comparison's runs; when both are done, the bars show each method's change against zero-shot "
    "per split.")

PLAYGROUND_INTRO = (
    "Classify any image among any class names you type, with the zero-shot CLIP and with the output weights of saved "
    "runs (same base model). The text tower is frozen in every method, so the same class texts serve every model.")

LEARN = r"""
## What CLIPood changes, in two formulas

CLIP classifies an image by comparing its embedding $f$ with the text embeddings $t_k$ of prompts such as
"a photo of a *circle*". Fine-tuning the image tower on a few domains (the **sources**) raises accuracy there, but it
also learns whatever shortcut those domains offer (here: colour) and forgets what the pre-trained model knew about
other domains (the **targets**) and other classes. CLIPood (Shu et al., ICML 2023) keeps fine-tuning but changes the
**loss** and the **weights it returns**.

### 1. Margin metric softmax (MMS): a loss that respects class semantics

With normalised features, temperature $T$ (CLIP's own logit scale, 100 for real CLIPs) and margin strength $\lambda$:

$$
\mathcal{L}_{\text{MMS}} = -\log \frac{\exp\big(T\cos(f, t_y)\big)}
{\sum_j \exp\Big(T\big(\cos(f, t_j) + \lambda\,(1 - \cos(t_y, t_j))\big)\Big)}
$$

Every wrong class $j$ gets a margin $\lambda(1-\cos(t_y,t_j))$: classes whose **names** are far from the true one
must be beaten by a wider gap, close ones by a narrow gap. The image features are pulled into the geometry the text
tower already has, instead of an arbitrary one that only fits the sources. $\lambda = 0$ is plain cross-entropy.
**See it:** the *Margins* tab draws this matrix for the current classes and any $\lambda$.

### 2. Beta moving average (BMA): averaging the whole trajectory, both ends included

Let $\theta_0$ be the zero-shot weights and $\theta_t$ the weights after step $t$ of $T$. CLIPood returns

$$
\theta_{\text{BMA}} = \frac{\sum_{t=0}^{T} \alpha_t\,\theta_t}{\sum_{t=0}^{T}\alpha_t},\qquad
\alpha_t = \mathrm{Beta}(\beta,\beta)\text{-pdf}\Big(\frac{t+0.5}{T+1}\Big)
$$

updated online after every step. With $\beta < 1$ the weights are **U-shaped**: the zero-shot end and the final end
both keep a large share, so the average keeps what the pre-trained model knew and what fine-tuning learned.
$\beta = 1$ is a uniform average (SWA-like), $\beta > 1$ favours the middle of training.
**See it:** the *Train* tab's Beta plot shows each step's weight, the steps already folded in, and who holds the
running average now; the **what-if** plot shows, after one run, the accuracy the average would have had for other
$\beta$ (tracked on the same trajectory).

### Baselines on the same trajectory
- **Fine-tune**: the last weights $\theta_T$ (plain cross-entropy).
- **WiSE-FT**: $\alpha\,\theta_T + (1-\alpha)\,\theta_0$ — one straight line between the two ends (the what-if plot's
  right panel).
- **EMA**: $\bar\theta \leftarrow d\,\bar\theta + (1-d)\,\theta_t$ — remembers mostly the recent steps.

### What to look for in the embedded world
The toy world draws 16 shapes in 6 styles and models the two things real fine-tuning data carries:

- **Task knowledge that transfers.** The tiny CLIP was pre-trained on captions that often swap two pairs of names
  (a square is usually called a "diamond" and a diamond a "square"; likewise semicircle and crescent). Its image
  tower tells the shapes apart, but their names point at the wrong shape, so zero-shot gets these four classes
  wrong in *every* style, as CLIP gets camera-trap classes wrong. Labelled data fixes that, and the fix holds in
  styles fine-tuning never saw.
- **A shortcut that does not transfer.** In the source styles (photo, cartoon) each shape mostly has "its" colour
  (the *colour shortcut* knob on the *Data* tab; the two shapes of a swapped pair share one colour, so colour cannot
  tell them apart). Fine-tuning learns the colour too, and that fails where colour is random or invisible.

Fine-tuning gains both; out of distribution the two pull against each other. CLIPood's average keeps the zero-shot
end, which knew no colour rule, and most of what fine-tuning learned. The story table in the README (the story
benchmark, three seeds) says, for the current defaults, which method wins in each setting and by how much, and the
*Compare* tab lets you check it on your own runs. WiSE-FT, one straight line between the two ends, is always shown
beside CLIPood: it is a strong baseline. What the world does **not** model: any pre-training data beyond these shapes
and captions, more than one shortcut, more than one kind of transferable gap. And it is small: fine-tuning on the
base classes erodes the distinctions between *new* classes within few steps, and CLIPood's average brings them back
only while that erosion stays small: the default keeps the image tower's tightest look-alikes among the base classes
and trains open class at half the learning rate. With circle, hexagon and pentagon all new, fine-tuning erases what
tells them apart and no weight average brings it back (the README's story table shows both splits, and which new
classes lose most). The default split is where this world shows the paper's ordering; on most other sources or base
classes it does not (the lines under *Measured* below count them; the *Data* tab says it for the split you pick).
Base halves drawn by the default's rule (the first swapped pair base, the second straddling, the tightest look-alikes
base) are the exception: the README's story table shows one with other classes where every check holds.
Without the shortcut there is little for CLIPood to win back, sketch and infrared sources carry little or no colour,
pixel-art sources make fine-tuning lean on colour hardest, and new classes erode beyond what an average restores.
The *Embeddings* tab maps a run's image features with the class texts: compare a fine-tuned run's map with
zero-shot's on the target styles.

*Sources: thuml/CLIPood (official code: MMS as `f − λ t_y`, BMA with a Beta pdf at bin midpoints); this project's
`core/clipood.py` implements exactly these formulas.*
"""


# -- core's messages in the Studio's words ------------------------------------------------------------------------
# Core words its advice for the command line (``--data path=...``); the Studio has fields, not flags. Each rule
# rewrites one piece of core advice; whatever flag is left is named as a dataset option or a form field.
_HUB_FETCH = re.compile(r"Fetch it on a machine with network: `hf download ([^ `]+)[^`]*`, copy \S+ here and add "
                        r"`--data path=[^`]+` \(or copy a filled Hugging Face cache, ~/\.cache/huggingface, here "
                        r"and set HF_HUB_OFFLINE=1\)\.?")
_REWORD = [
    (_HUB_FETCH, r"Fetch \1 on a machine with network (into its Hugging Face cache, ~/.cache/huggingface), copy "
                 r"that cache to this server and restart the Studio there; or pick another dataset."),
    (re.compile(r"then add --data (?:root|path)=(\S+)"), r"then pick **folder:…** as the dataset and type \1 as "
                                                          r"the folder path"),
    (re.compile(r"\(--dataset hf:ORG/NAME\)"), "(dataset **hf:…** with its id)"),
    (re.compile(r"\(--data path=DIR or --data data_files=FILE\.parquet\)"), "(dataset **folder:…**)"),
    (re.compile(r"`--data (\w+)=[^`]*`|--data (\w+)(?:=\S*)?"), lambda m: f"the dataset option {m[1] or m[2]}"),
    (re.compile(r"^--([a-z][\w-]*):"), lambda m: f"{_field(m[1])}:"),
    (re.compile(r"(?<![\w/.])--([a-z][\w-]*)"), lambda m: _field(m[1])),
]


def _field(flag: str) -> str:
    from .configure import LABELS

    name = flag.replace("-", "_")
    return LABELS.get(name, f"the setting {name}")


def studio_words(e) -> str:
    """One line of a core message (or exception) for the Studio: its first line, with command-line advice
    (``--data path=...``, ``--batch-size``) reworded as the form's fields and datasets."""
    s = str(e).strip()
    s = s.splitlines()[0] if s else type(e).__name__
    for pattern, repl in _REWORD[:4]:
        s = pattern.sub(repl, s)
    parts = re.split(r"(`[^`]*`)", s)  # (a shell command in backticks, e.g. a download script, stays as it is)
    for pattern, repl in _REWORD[4:]:
        parts = [p if p.startswith("`") and not p.startswith("`--") else pattern.sub(repl, p) for p in parts]
    return "".join(parts)


def _pct(x: float) -> str:
    return f"{x:.1f} %"


def measured_story() -> str:
    """What happens on the embedded default, read from the committed story benchmark (core.story), never typed in:
    empty when its JSON is missing."""
    from core.story import committed_means

    m = committed_means()
    if not m or not {"domain_shift", "open_class"} <= set(m):
        return ""
    ds, oc = m["domain_shift"], m["open_class"]
    losses = [k.split("/", 1)[1] for k in ds["zeroshot"] if k.startswith("ood/")
              and ds["finetune"][k] < ds["zeroshot"][k]]
    where = (f"fine-tuning loses to zero-shot on {', '.join(losses)}" if losses
             else "fine-tuning gains on every unseen style")
    return (f"Measured on the embedded default (`python -m core bench story`, mean over seeds): on the unseen styles "
            f"zero-shot {_pct(ds['zeroshot']['ood'])}, fine-tune {_pct(ds['finetune']['ood'])}, CLIPood "
            f"{_pct(ds['clipood']['ood'])}, WiSE-FT {_pct(ds['wiseft']['ood'])}; {where}. On classes fine-tuning "
            f"never saw (open class, new): zero-shot {_pct(oc['zeroshot']['new'])}, fine-tune "
            f"{_pct(oc['finetune']['new'])}, CLIPood {_pct(oc['clipood']['new'])}.")


def measured_splits() -> str:
    """How far the lesson holds beyond the default split, read from the committed split scan (core.split_scan):
    empty when its JSON is missing."""
    from core.split_scan import FAMILIES, committed_summary

    m = committed_summary()
    if not m:
        return ""
    lines = [f"- on {len(m[k])} of {len(m[k + '_total'])} {what}" + (f": {'; '.join(m[k])}" if m[k] else "")
             for k, (_, what) in FAMILIES.items() if k in m]
    return ("Beyond the default split (`python -m core bench splits`, one seed per split; the README's table says "
            "which check fails where), every check of the story's ordering holds:\n" + "\n".join(lines))


def split_verdict(checks: list | None) -> str:
    """What the split scan measured on the split the Data form holds (``core.split_scan.measured_checks``): empty when
    the scan did not run it."""
    if checks is None:
        return ""
    from core.split_scan import SHORT

    failed = [f"{SHORT.get(n, n)} ({d.removeprefix('per seed: ')})" for n, ok, d in checks if not ok]
    head = "Split scan (`python -m core bench splits`, seed 0) on this split: "
    if not failed:
        return head + "every check of the paper's ordering holds."
    return head + "the paper's ordering does **not** hold: " + "; ".join(failed) + "."


def unseen_warning(model: str, words: list[str]) -> str:
    """One line when class names use words the model never read in pre-training (empty when there are none)."""
    if not words:
        return ""
    shown = ", ".join(f"“{w}”" for w in words[:8]) + (f" and {len(words) - 8} more" if len(words) > 8 else "")
    return (f"⚠️ {model} never read {shown} in pre-training (it learned only the toy world's shape, colour and "
            "style words): its text features for these names are noise, so their results mean nothing.")


LESSON_INTRO = (
    "A lesson in eight steps, for a class in front of one screen. Each **Go** opens the view and sets the form for "
    "that step (nothing starts by itself); **Reset** puts every field back to the embedded default. The numbers the "
    "lesson is about are in the header, measured by the story benchmark.")
# (title, what to say and do, tab id, presets: form field -> value; "default" = the form's default)
LESSON_STEPS = (
    ("The data and its shortcut",
     "Sources (photo, cartoon) are what fine-tuning sees; targets (sketch, painting, pixel art, infrared) are never "
     "seen. In the sources each shape mostly has its own colour: the heatmap shows it. Try *Shortcut off* and back.",
     "data", {"colour_bias": "default"}),
    ("Zero-shot: what pre-training knows",
     "Press **Start**: a zero-shot run trains nothing and scores the pre-trained model on every split. Its numbers "
     "are the dashed reference line of every later run.", "train", {"method": "zeroshot"}),
    ("Fine-tuning: what it gains and what it loses",
     "Press **Start** and watch the target curves against the dashed zero-shot line while the source curve climbs: "
     "labelled data fixes what pre-training got wrong, the colour shortcut pulls the other way.",
     "train", {"method": "finetune", "whatif": False}),
    ("CLIPood",
     "Same data, same seed, with margins from the class texts (λ) and the Beta moving average (β). Press **Start** "
     "and compare the result row with the fine-tuning run's.", "train", {"method": "clipood", "whatif": False}),
    ("What BMA and WiSE-FT do",
     "With *what-if averages* on, one run also keeps Beta averages at other β, an EMA and WiSE-FT: the what-if plot "
     "shows where each lands. Press **Start**.", "train", {"method": "clipood", "whatif": True}),
    ("Margins",
     "Each wrong class gets a margin λ·(1 − cos) from how far apart the class *names* are. Move λ.",
     "margins", {}),
    ("Embeddings",
     "Where the images of each class and style land, with the class texts as stars; pick the zero-shot weights "
     "and a run's result to compare.", "embeddings", {}),
    ("All three side by side",
     "Press **Run the teaching comparison**: fine-tune, CLIPood and WiSE-FT with one seed, then a bar chart of "
     "each one's change against zero-shot.", "compare", {}),
)
