"""Template sentences with known, independent factors: topic, sentiment, tense, negation, grammatical number.

Every factor is drawn independently and uniformly per sentence from a seeded generator, so output is deterministic by
seed and factors are uncorrelated by construction (the ground truth for probes and disentanglement metrics).
`sentiment` is the polarity of the adjective; `negation` inserts "not" (so the sentence's overall meaning may flip,
which is exactly what makes the two factors interesting to probe separately).
`polarity` is derived, not drawn: the meaning of the sentence, sentiment XOR negation ("not awful" is positive).
No single word carries it, so a linear probe on mean-pooled word embeddings cannot read it (an XOR), while a
contextual layer can: a concept whose decodability should appear with depth.
"""

from __future__ import annotations

import numpy as np

from repscope.sources.datasets import TextDataset

FACTORS: dict[str, list[str]] = {
    "topic": ["food", "sports", "weather", "technology", "music", "travel"],
    "sentiment": ["negative", "positive"],
    "tense": ["past", "present", "future"],
    "negation": ["affirmed", "negated"],
    "number": ["singular", "plural"],
}
DERIVED: dict[str, list[str]] = {"polarity": ["negative", "positive"]}  # sentiment XOR negation

# (singular, plural) nouns and a trailing context per topic.
_NOUNS = {
    "food": [("pizza", "pizzas"), ("soup", "soups"), ("sandwich", "sandwiches"), ("cake", "cakes"), ("meal", "meals")],
    "sports": [("match", "matches"), ("team", "teams"), ("game", "games"), ("race", "races"), ("player", "players")],
    "weather": [("storm", "storms"), ("morning", "mornings"), ("breeze", "breezes"), ("forecast", "forecasts"),
                ("summer", "summers")],
    "technology": [("laptop", "laptops"), ("phone", "phones"), ("update", "updates"), ("app", "apps"),
                   ("camera", "cameras")],
    "music": [("song", "songs"), ("concert", "concerts"), ("album", "albums"), ("singer", "singers"),
              ("band", "bands")],
    "travel": [("flight", "flights"), ("hotel", "hotels"), ("trip", "trips"), ("beach", "beaches"),
               ("train", "trains")],
}
_CONTEXT = {
    "food": ["at the new restaurant", "for dinner", "at the market", "in the cafe"],
    "sports": ["in the final", "at the stadium", "this season", "on the field"],
    "weather": ["in the city", "along the coast", "over the hills", "this week"],
    "technology": ["after the upgrade", "for daily work", "out of the box", "at the launch"],
    "music": ["at the festival", "on the radio", "in the hall", "on the record"],
    "travel": ["to the islands", "across the country", "during the holiday", "on the way home"],
}
_ADJ = {
    "positive": ["wonderful", "delightful", "excellent", "pleasant", "lovely", "superb"],
    "negative": ["terrible", "awful", "disappointing", "dreadful", "horrible", "miserable"],
}
_ADV = ["really", "truly", "quite", "rather", "very", ""]
_DET = {"singular": ["the", "this", "that", "my"], "plural": ["the", "these", "those", "my"]}
_BE = {  # (tense, number) -> (affirmed, negated)
    ("past", "singular"): ("was", "was not"),
    ("past", "plural"): ("were", "were not"),
    ("present", "singular"): ("is", "is not"),
    ("present", "plural"): ("are", "are not"),
    ("future", "singular"): ("will be", "will not be"),
    ("future", "plural"): ("will be", "will not be"),
}
_FRAMES = ["{np} {be} {adv}{adj} {ctx}.", "i think {np} {be} {adv}{adj} {ctx}.", "honestly, {np} {be} {adv}{adj}."]


def generate_sentences(n: int = 2000, seed: int = 0) -> TextDataset:
    """`n` template sentences with factor columns topic, sentiment, tense, negation, number (integer codes) and
    the derived `polarity` = sentiment XOR negation.

    Codes index `FACTORS[name]` (and `DERIVED`); e.g. topic 0 = "food". Lower-case, like SST/TREC text.
    """
    rng = np.random.default_rng(seed)
    codes = {f: rng.integers(0, len(v), size=n) for f, v in FACTORS.items()}
    texts = []
    for i in range(n):
        topic = FACTORS["topic"][codes["topic"][i]]
        sent = FACTORS["sentiment"][codes["sentiment"][i]]
        tense = FACTORS["tense"][codes["tense"][i]]
        number = FACTORS["number"][codes["number"][i]]
        neg = codes["negation"][i]
        noun = _NOUNS[topic][rng.integers(len(_NOUNS[topic]))][0 if number == "singular" else 1]
        det = _DET[number][rng.integers(len(_DET[number]))]
        adv = _ADV[rng.integers(len(_ADV))]
        frame = _FRAMES[rng.integers(len(_FRAMES))]
        texts.append(frame.format(
            np=f"{det} {noun}", be=_BE[(tense, number)][neg], adv=adv + " " if adv else "",
            adj=_ADJ[sent][rng.integers(len(_ADJ[sent]))], ctx=_CONTEXT[topic][rng.integers(len(_CONTEXT[topic]))],
        ))
    cols = {k: v.astype(np.int64) for k, v in codes.items()}
    cols["polarity"] = cols["sentiment"] ^ cols["negation"]
    return TextDataset(texts, cols, name=f"templates_n{n}_s{seed}")
