"""A learned risk screen beside the lexicon: TF-IDF n-grams and linear models.

Training (``train``) needs scikit-learn; the service does not. A trained model
is exported (``export``) to one ``.npz`` file of plain arrays (vocabulary,
idf, coefficients, intercepts, thresholds, a JSON header) that
:class:`LearnedModel` loads with ``numpy.load(allow_pickle=False)`` and scores
with a few lines of numpy: no pickle, no scikit-learn at run time.

What the model reads: the child's first messages *together* (joined with a
clause break, in the order sent), normalised like the lexicon does
(lowercase, æ/ø/å folded, repeated letters collapsed), as

- words, word pairs and word triples within a clause (``w:``, ``b:``, ``t:``),
- the words of the last message again (``l:``) when there are several: danger
  often comes last, after a "hei",
- character 3–5-grams inside each word with its boundaries (``c:``), which
  carry youth spelling, dialect and compounds ("sjølmord", "kuttet", "kutta"),
- optionally the lexicon's own findings per category (``x:lex:<category>``):
  the model learns how far to trust the lexicon.

It has one logistic regression per category plus one for "at risk at all".
A message is at risk when the highest probability of these (rule ``max``; old
files: the at-risk probability alone, rule ``any``) reaches the threshold
chosen by cross-validation on the training data (``thresholds.any``: at most 5%
false positives there); a finding then
names every category whose probability reaches its own threshold, or else the
most likely one, and why: the vocabulary features that weighed most towards it
(``matched: …``), never the child's text around them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from chatvakt import config

from .risk import RiskFinding, normalise, reason_text

log = logging.getLogger(__name__)

__all__ = [
    "LEARNED_CATEGORIES",
    "LABELS",
    "example_text",
    "features",
    "LearnedModel",
    "CombinedRiskScreen",
    "train",
    "export",
    "choose_thresholds",
    "SHIPPED_MODEL_PATH",
    "MODEL_FILE",
    "service_screen",
    "model_path",
]

LEARNED_CATEGORIES = (
    "suicide",
    "self_harm",
    "medical_danger",
    "violence_home",
    "sexual_abuse",
    "grooming_sextortion",
    "acute_threat",
    "someone_else",
)
ANY = "any"
LABELS = (ANY,) + LEARNED_CATEGORIES
CATEGORY_LABELS = {
    "suicide": "selvmord",
    "self_harm": "selvskading",
    "medical_danger": "akutt medisinsk fare",
    "violence_home": "vold/omsorgssvikt hjemme",
    "sexual_abuse": "seksuelle overgrep",
    "grooming_sextortion": "grooming/sextortion",
    "acute_threat": "akutt trussel nå",
    "someone_else": "en annen i fare",
}
MODEL_FILE = "risk_model.npz"
SHIPPED_MODEL_PATH = Path(__file__).resolve().parent / "data" / MODEL_FILE
FORMAT = "chatvakt-risk-model/1"
MAX_MESSAGES = 3  # the first messages read together
COMMON_IDF = 2.5  # features in more than about a fifth of the examples never explain a finding


# --------------------------------------------------------------------------- features


def example_text(messages: Sequence[str] | str) -> str:
    """The child's first messages as one text (a clause break between them)."""
    if isinstance(messages, str):
        return messages
    return " .\n".join(m for m in list(messages)[:MAX_MESSAGES] if isinstance(m, str) and m.strip())


# The feature options of the models before options were recorded in the file.
LEGACY_FEATURES = {"word_n": 2, "last": False}
# The options a fresh training uses.
FEATURES = {"word_n": 3, "last": True}


def features(text: str, lexicon=None, opts: dict | None = None) -> list[str]:
    """The feature strings of one text (repeated features repeat).

    ``opts``: ``word_n`` (2: words and word pairs, 3: also word triples,
    ``t:``), ``last`` (the words of the last message again, ``l:``, when
    the text holds more than one message: danger often comes last).
    """
    if not text or not isinstance(text, str):
        return []
    opts = LEGACY_FEATURES if opts is None else opts
    word_n = int(opts.get("word_n", 2))
    tokens = normalise(text).split(" ")
    out: list[str] = []
    prev = prev2 = "."
    for tok in tokens:
        if tok == ".":
            prev = prev2 = "."
            continue
        out.append("w:" + tok)
        if prev != ".":
            out.append(f"b:{prev}_{tok}")
            if word_n >= 3 and prev2 != ".":
                out.append(f"t:{prev2}_{prev}_{tok}")
        prev2, prev = prev, tok
        padded = f" {tok} "
        n_len = len(padded)
        for n in (3, 4, 5):
            if n_len < n:
                break
            for i in range(n_len - n + 1):
                out.append("c:" + padded[i : i + n])
    if opts.get("last") and "\n" in text.strip():
        last = text.strip().rsplit("\n", 1)[1]
        out.extend("l:" + tok for tok in normalise(last).split(" ") if tok and tok != ".")
    if lexicon is not None:
        for finding in lexicon.screen(text):
            out.append("x:lex:" + finding.category)
            if finding.severity == "high":
                out.append("x:lexhigh")
    return out


def _feature_term(name: str) -> str | None:
    """A counsellor-readable form of a vocabulary feature (never text around it)."""
    kind, _, body = name.partition(":")
    if kind == "w":
        return body
    if kind in ("b", "t"):
        return body.replace("_", " ")
    if kind == "l":
        return body
    if kind == "c":
        return f"…{body.strip()}…"
    if kind == "x":
        return "leksikon"
    return None


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Scores:
    probs: dict[str, float]  # label -> probability
    at_risk: bool
    categories: tuple[str, ...]  # categories found (empty when not at risk)
    why: dict[str, tuple[str, ...]]  # category -> feature terms that weighed most
    risk: float = 0.0  # the at-risk score the "any" threshold applies to


class LearnedModel:
    """The exported model: pure numpy scoring of one text."""

    def __init__(
        self,
        vocab: Sequence[str],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        thresholds: dict[str, float],
        meta: dict,
    ):
        self.labels = tuple(meta["labels"])
        self.meta = meta
        self.uses_lexicon = bool(meta.get("uses_lexicon"))
        self._vocab_list = list(vocab)
        self._index = {f: i for i, f in enumerate(self._vocab_list)}
        self._idf = np.asarray(idf, dtype=np.float64)
        self._coef = np.asarray(coef, dtype=np.float64)  # (n_features, n_labels)
        self._intercept = np.asarray(intercept, dtype=np.float64)
        self.thresholds = {k: float(v) for k, v in thresholds.items()}
        self._thr = np.array([self.thresholds[label] for label in self.labels])
        self._high = float(meta.get("high_threshold", 1.0))
        self._readable = np.array([_feature_term(f) is not None and f[0] in "wbtl" for f in self._vocab_list])
        self.feature_opts = dict(meta.get("features") or LEGACY_FEATURES)
        self.rule = meta.get("rule", "any")
        if self.rule not in RULES:
            raise ValueError(f"unknown at-risk rule {self.rule!r}")
        # words as common as "jeg", "har" explain nothing to a counsellor
        self._telling = self._idf >= COMMON_IDF

    # -- loading
    @classmethod
    def load(cls, path) -> "LearnedModel":
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT:
                raise ValueError(f"{path}: not a {FORMAT} file")
            vocab = str(data["vocab"]).split("\n")
            return cls(vocab, data["idf"], data["coef"], data["intercept"], meta["thresholds"], meta)

    # -- the vector
    def vector(self, text: str, lexicon=None) -> tuple[np.ndarray, np.ndarray]:
        """Indices and l2-normalised sublinear tf-idf weights of the known features."""
        counts: dict[int, int] = {}
        index = self._index
        for f in features(text, lexicon if self.uses_lexicon else None, self.feature_opts):
            j = index.get(f)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        w = (1.0 + np.log(tf)) * self._idf[idx]
        norm = math.sqrt(float(w @ w))
        if norm > 0:
            w /= norm
        return idx, w

    def decision(self, text: str, lexicon=None) -> np.ndarray:
        idx, w = self.vector(text, lexicon)
        return self._intercept + (w @ self._coef[idx] if len(idx) else 0.0)

    def probabilities(self, text: str, lexicon=None) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.decision(text, lexicon)))

    def score(self, text: str, lexicon=None, explain: int = 3) -> Scores:
        idx, w = self.vector(text, lexicon)
        z = self._intercept + (w @ self._coef[idx] if len(idx) else 0.0)
        p = 1.0 / (1.0 + np.exp(-z))
        probs = dict(zip(self.labels, (float(x) for x in p), strict=True))
        score = float(at_risk_score(p, self.rule))
        at_risk = bool(score >= self._thr[0])
        cats: tuple[str, ...] = ()
        why: dict[str, tuple[str, ...]] = {}
        if at_risk:
            over = [(p[k] / max(self._thr[k], 1e-9), label) for k, label in enumerate(self.labels) if k > 0]
            cats = tuple(label for ratio, label in over if ratio >= 1.0)
            if not cats:
                cats = (max(over)[1],)
            for cat in cats:
                k = self.labels.index(cat)
                why[cat] = self._why(idx, w, k, explain)
        return Scores(probs, at_risk, cats, why, score)

    def _why(self, idx: np.ndarray, w: np.ndarray, k: int, n: int) -> tuple[str, ...]:
        if not len(idx):
            return ()
        contrib = w * self._coef[idx, k]
        order = np.argsort(-contrib)
        words, chars = [], []
        for o in order:
            if contrib[o] <= 0:
                break
            name = self._vocab_list[idx[o]]
            term = _feature_term(name)
            if term is None or not self._telling[idx[o]]:
                continue
            (words if self._readable[idx[o]] or name.startswith("x:") else chars).append(term)
        terms = list(dict.fromkeys(words))[:n]
        if len(terms) < n:
            terms += list(dict.fromkeys(chars))[: n - len(terms)]
        return tuple(terms)

    @property
    def high_threshold(self) -> float:
        return self._high


# --------------------------------------------------------------------------- the combined screen


class CombinedRiskScreen:
    """The lexicon and the learned model behind the :class:`RiskScreen` protocol.

    The model decides (the lexicon's findings are among its features); each
    finding names its category, a severity (``high`` when the at-risk
    probability reaches the model's high threshold or the lexicon says high for
    that category, else ``medium``) and a reason of lexicon terms and the
    model's weightiest vocabulary features.
    """

    def __init__(self, model: LearnedModel, lexicon=None):
        self.model = model
        self.lexicon = lexicon

    def screen(self, text: str) -> list[RiskFinding]:
        return self.screen_messages([text] if isinstance(text, str) else [])

    def screen_messages(self, messages: Sequence[str]) -> list[RiskFinding]:
        text = example_text([m for m in messages if isinstance(m, str)])
        if not text.strip():
            return []
        lex = self.lexicon.screen(text) if self.lexicon is not None else []
        lex_by_cat = {f.category: f for f in lex}
        scores = self.model.score(text, _Fixed(lex) if self.model.uses_lexicon else None)
        if not scores.at_risk:
            return []
        high = scores.risk >= self.model.high_threshold
        findings = []
        for cat in scores.categories:
            lf = lex_by_cat.get(cat)
            terms = tuple(lf.terms) if lf else ()
            topics = tuple(lf.topics or lf.terms) if lf else ()
            learned = tuple(t for t in scores.why.get(cat, ()) if t != "leksikon")
            severity = "high" if high or (lf is not None and lf.severity == "high") else "medium"
            # the lexicon's topics and the model's own vocabulary, never «quoted»
            matched = list(dict.fromkeys(topics + learned)) or ["modell"]
            reason = f"{reason_text(cat, matched, CATEGORY_LABELS.get(cat))} (p={scores.probs[cat]:.2f})"
            findings.append(RiskFinding(category=cat, severity=severity, terms=terms + learned, reason=reason[:500]))
        return findings


class _Fixed:
    """A lexicon stand-in that returns findings already computed."""

    def __init__(self, findings):
        self._findings = findings

    def screen(self, _text):
        return self._findings


# --------------------------------------------------------------------------- data and training


def stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha1(normalise(text).encode()).digest()[:8], "big")


def split_of(row: dict, test_share: int = 5) -> str:
    """Deterministic split: one in ``test_share`` texts goes to test (by a stable
    hash of the normalised text, so duplicates across authors land together)."""
    return "test" if stable_hash(example_text(row["messages"])) % test_share == 0 else "train"


def jsonl(path, partial_ok: bool = False) -> Iterator[tuple[int, dict]]:
    """(line number, row) of a JSON-lines file, blank lines skipped. With
    ``partial_ok`` a broken line after the first is passed over: a file still
    being written ends in a partial line."""
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError:
                if not (partial_ok and n > 1):
                    raise


def load_rows(path) -> list[dict]:
    """Corpus rows (``messages``) or old-format rows (``text``), as ``messages`` rows."""
    rows = []
    for _n, row in jsonl(path, partial_ok=True):
        if "messages" not in row and isinstance(row.get("text"), str):
            row = {**row, "messages": [row["text"]]}
        msgs = row.get("messages")
        if isinstance(msgs, str):
            msgs = [msgs]
        if not isinstance(msgs, list) or not msgs or not isinstance(row.get("labels"), list):
            continue
        row["messages"] = [str(m) for m in msgs]
        rows.append(row)
    return rows


def label_matrix(rows: Sequence[dict]) -> np.ndarray:
    """(n, len(LABELS)): 1/0, or -1 where a label is unknown (a correction that
    says at risk without a category)."""
    y = np.zeros((len(rows), len(LABELS)), dtype=np.int8)
    for i, row in enumerate(rows):
        labels = set(row["labels"])
        at_risk = bool(labels) or bool(row.get("at_risk"))
        y[i, 0] = 1 if at_risk else 0
        for k, cat in enumerate(LEARNED_CATEGORIES, 1):
            if cat in labels:
                y[i, k] = 1
            elif at_risk and not labels:
                y[i, k] = -1
    return y


@dataclass
class Trained:
    vectorizer: object
    models: list  # one LogisticRegression per label
    thresholds: dict[str, float]
    high_threshold: float
    uses_lexicon: bool
    info: dict
    feature_opts: dict = None  # type: ignore[assignment]
    rule: str = "any"

    def decision(self, texts: Sequence[str], lexicon=None) -> np.ndarray:
        X = self.vectorizer.transform(_docs(texts, lexicon if self.uses_lexicon else None, self.feature_opts))
        return np.column_stack([m.decision_function(X) for m in self.models])


def _docs(texts, lexicon, opts=None):
    return [features(t, lexicon, opts) for t in texts]


def _identity(doc):
    return doc


def _fit(docs: list[list[str]], y: np.ndarray, C: float, min_df: int):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=min_df, dtype=np.float64)
    X = vec.fit_transform(docs)
    models = []
    for k in range(y.shape[1]):
        keep = y[:, k] >= 0
        if len(set(y[keep, k].tolist())) < 2:  # a category with no examples: never found
            models.append(_Never(X.shape[1]))
            continue
        m = LogisticRegression(C=C, class_weight="balanced", solver="liblinear", max_iter=1000, random_state=0)
        m.fit(X[keep], y[keep, k])
        models.append(m)
    return vec, models


class _Never:
    """The model of a label without positive examples."""

    def __init__(self, n_features):
        self.coef_ = np.zeros((1, n_features))
        self.intercept_ = np.array([-20.0])

    def decision_function(self, X):
        return np.full(X.shape[0], -20.0)


def cross_val_scores(docs, y, C, min_df, folds=5):
    """Out-of-fold decision values (vectorizer refitted in every fold)."""
    n = len(docs)
    fold = np.array([i % folds for i in range(n)])
    rng = np.random.default_rng(14)
    rng.shuffle(fold)
    out = np.zeros((n, y.shape[1]))
    for f in range(folds):
        tr, te = fold != f, fold == f
        vec, models = _fit([docs[i] for i in np.flatnonzero(tr)], y[tr], C, min_df)
        X = vec.transform([docs[i] for i in np.flatnonzero(te)])
        out[te] = np.column_stack([m.decision_function(X) for m in models])
    return out


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


RULES = ("any", "max")


def at_risk_score(p: np.ndarray, rule: str = "any"):
    """The score the ``any`` threshold applies to: the at-risk model's
    probability (``any``), or the highest probability of the at-risk model and
    every category model (``max``: a category model sure of its category
    raises the message even when the at-risk model hesitates)."""
    p = np.asarray(p)
    if rule == "max":
        return p.max(axis=-1)
    return p[..., 0]


def choose_thresholds(
    p: np.ndarray,
    y: np.ndarray,
    target_fpr: float = 0.05,
    category_recall: float = 0.97,
    high_fpr: float = 0.01,
    rule: str = "max",
) -> tuple[dict, float, dict]:
    """Thresholds from out-of-fold probabilities of the TRAINING data.

    ``any``: the lowest threshold on :func:`at_risk_score` whose
    false-positive rate on the training negatives stays within ``target_fpr``
    (the 5% aim; on the test split the same threshold has given less).
    Each category: the threshold that keeps ``category_recall`` of that
    category's messages the ``any`` threshold flags (a category only names a
    finding; it cannot raise one). ``high``: the threshold at ``high_fpr``.
    """
    score = at_risk_score(p, rule)
    neg = score[y[:, 0] == 0]
    pos = score[y[:, 0] == 1]

    def at_fpr(rate):
        if not len(neg):
            return 0.5
        s = np.sort(neg)[::-1]
        k = int(math.floor(rate * len(s)))  # k negatives may pass
        return float(s[k]) + 1e-9 if k < len(s) else 0.0

    t_any = at_fpr(target_fpr)
    thresholds = {ANY: t_any}
    flagged = score >= t_any
    for k, cat in enumerate(LEARNED_CATEGORIES, 1):
        sel = (y[:, k] == 1) & flagged
        if sel.sum() < 3:
            thresholds[cat] = 0.5
            continue
        thresholds[cat] = float(np.quantile(p[sel, k], 1 - category_recall))
    info = {
        "cv_recall": float((pos >= t_any).mean()) if len(pos) else None,
        "cv_fpr": float((neg >= t_any).mean()) if len(neg) else None,
        "n_pos": int(len(pos)),
        "n_neg": int(len(neg)),
    }
    return thresholds, max(at_fpr(high_fpr), t_any), info


def train(
    rows: Sequence[dict],
    lexicon=None,
    C: float = 30.0,
    min_df: int = 2,
    folds: int = 5,
    target_fpr: float = 0.05,
    log=None,
    feature_opts: dict | None = None,
    rule: str = "max",
    category_recall: float = 0.97,
) -> Trained:
    """Fit on ``rows`` only; thresholds from ``folds``-fold cross-validation on them."""
    opts = dict(FEATURES if feature_opts is None else feature_opts)
    texts = [example_text(r["messages"]) for r in rows]
    docs = _docs(texts, lexicon, opts)
    y = label_matrix(rows)
    t0 = time.perf_counter()
    oof = cross_val_scores(docs, y, C, min_df, folds)
    thresholds, high, info = choose_thresholds(_sigmoid(oof), y, target_fpr, category_recall, rule=rule)
    vec, models = _fit(docs, y, C, min_df)
    info.update(
        C=C,
        min_df=min_df,
        folds=folds,
        n=len(rows),
        target_fpr=target_fpr,
        rule=rule,
        category_recall=category_recall,
        seconds=round(time.perf_counter() - t0, 2),
    )
    if log:
        log(
            f"trained on {len(rows)} examples in {info['seconds']} s; cross-validated on the training data:"
            f" recall {info['cv_recall']:.3f} at FP {info['cv_fpr']:.3f}"
        )
    return Trained(vec, models, thresholds, high, lexicon is not None, info, opts, rule)


def _meta(trained: Trained) -> dict:
    """What a model says about itself, in the file and in memory alike."""
    return {
        "format": FORMAT,
        "labels": list(LABELS),
        "thresholds": trained.thresholds,
        "high_threshold": trained.high_threshold,
        "uses_lexicon": trained.uses_lexicon,
        "features": trained.feature_opts or LEGACY_FEATURES,
        "rule": trained.rule,
    }


def export(trained: Trained, path, extra: dict | None = None) -> Path:
    """Write the model as plain arrays (``numpy.savez_compressed``, no pickle)."""
    vocab = trained.vectorizer.get_feature_names_out()
    if any("\n" in v for v in vocab):
        raise ValueError("a feature contains a newline")
    coef = np.column_stack([m.coef_.ravel() for m in trained.models]).astype(np.float32)
    intercept = np.array([m.intercept_[0] for m in trained.models], dtype=np.float64)
    idf = trained.vectorizer.idf_.astype(np.float32)
    meta = {**_meta(trained), "training": trained.info, **(extra or {})}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(
        tmp,
        vocab=np.array("\n".join(vocab)),
        idf=idf,
        coef=coef,
        intercept=intercept,
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )
    os.replace(tmp, path)
    return path


def from_trained(trained: Trained) -> LearnedModel:
    """The exported form in memory (float32 coefficients, as in the file)."""
    vocab = trained.vectorizer.get_feature_names_out()
    coef = np.column_stack([m.coef_.ravel() for m in trained.models]).astype(np.float32)
    intercept = np.array([m.intercept_[0] for m in trained.models])
    meta = _meta(trained)
    return LearnedModel(
        list(vocab), trained.vectorizer.idf_.astype(np.float32), coef, intercept, trained.thresholds, meta
    )


def iter_texts(rows: Iterable[dict]) -> list[str]:
    return [example_text(r["messages"]) for r in rows]


# --------------------------------------------------------------------------- the training data

DATA_DIR = Path(__file__).resolve().parent / "data"
CORPUS_DIR = DATA_DIR / "corpus"
# The older sets' tuning splits join the training data (their direct words are
# what the lexicon knows); their test splits stay held out for `make eval`.
OLD_TRAINING = ((DATA_DIR / "risk_eval.jsonl", "dev"), (DATA_DIR / "risk_eval_blind.jsonl", "blind_dev"))


def corpus_splits(corpus=CORPUS_DIR, with_old: bool = True) -> tuple[list[dict], list[dict], list[str]]:
    """(train, test, files) from the training authors' ``a*.jsonl`` (the blind
    file is never read here), plus the older sets' tuning splits in train."""
    corpus = Path(corpus)
    files = sorted(corpus.glob("a*.jsonl"))
    rows = [r for f in files for r in load_rows(f)]
    train_rows = [r for r in rows if split_of(r) == "train"]
    test_rows = [r for r in rows if split_of(r) == "test"]
    names = [f.name for f in files]
    if with_old:
        for path, split in OLD_TRAINING:
            if path.exists():
                old = [r for r in load_rows(path) if r.get("split") == split]
                train_rows += old
                names.append(f"{path.name}[{split}]")
    return train_rows, test_rows, names


# --------------------------------------------------------------------------- the service's screen

SCREEN_ENV = "CHATVAKT_RISK_SCREEN"  # "combined" (default) or "lexicon"
MODEL_ENV = "CHATVAKT_RISK_MODEL"  # a model file; else CHATVAKT_DATA/risk_model.npz, else the shipped one


def model_path() -> Path:
    """The model the service loads: $CHATVAKT_RISK_MODEL, else a retrained
    CHATVAKT_DATA/risk_model.npz when present, else the shipped file."""
    explicit = config.env(MODEL_ENV)
    if explicit:
        return Path(explicit)
    local = config.data_dir() / MODEL_FILE
    return local if local.exists() else SHIPPED_MODEL_PATH


def model_path_for_retrain() -> Path:
    """Where `chatvakt risk retrain` writes: $CHATVAKT_RISK_MODEL or CHATVAKT_DATA/risk_model.npz."""
    explicit = config.env(MODEL_ENV)
    if explicit:
        return Path(explicit)
    return config.data_dir() / MODEL_FILE


@functools.lru_cache(maxsize=4)
def _combined(path: str, _mtime_ns: int, lexicon) -> "CombinedRiskScreen":
    started = time.perf_counter()
    model = LearnedModel.load(path)
    log.info("risk model %s loaded in %.0f ms", path, (time.perf_counter() - started) * 1000)
    return CombinedRiskScreen(model, lexicon)


def service_screen():
    """The screen the escalation service uses: the combined screen, or the
    lexicon alone with CHATVAKT_RISK_SCREEN=lexicon. A model file that cannot be
    loaded leaves the lexicon screening (logged), never no screen at all.
    A retrained file (a new modification time) is picked up without a restart."""
    from .risk import default_screen

    lexicon = default_screen()
    mode = (config.env(SCREEN_ENV) or "combined").strip().lower()
    if mode == "lexicon":
        return lexicon
    if mode != "combined":
        raise ValueError(f"{SCREEN_ENV} must be combined or lexicon, not {mode!r}")
    path = model_path()
    try:
        return _combined(str(path.resolve()), path.stat().st_mtime_ns, lexicon)
    except Exception:  # noqa: BLE001 - screening goes on with the lexicon
        log.exception("the risk model %s could not be loaded: screening with the lexicon alone", path)
        return lexicon
