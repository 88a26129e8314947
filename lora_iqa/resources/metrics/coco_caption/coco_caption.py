"""COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr) as a local `evaluate` module.

Scores come from pycocoevalcap's reference scorers, as COCOEvalCap computes them. Load it by path
(no Hub): ``evaluate.load(".../coco_caption").compute(predictions=..., references=...)``.
"""

import shutil
import threading

import datasets
import evaluate
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

_CITATION = """\
@article{chen2015microsoft,
  title={Microsoft COCO Captions: Data Collection and Evaluation Server},
  author={Chen, Xinlei and Fang, Hao and Lin, Tsung-Yi and Vedantam, Ramakrishna and Gupta, Saurabh and Doll{\\'a}r, Piotr and Zitnick, C. Lawrence},
  journal={arXiv preprint arXiv:1504.00325},
  year={2015}
}
"""

_DESCRIPTION = """\
Corpus-level COCO caption metrics computed by pycocoevalcap's scorers: BLEU-1..4 (Bleu(4), 'closest'
reference length), METEOR 1.5 (Java), ROUGE-L (beta 1.2, mean over captions) and CIDEr-D (document
frequencies from the given references). Tokenization follows coco-caption: Stanford PTBTokenizer
(Java), lowercased, punctuation tokens dropped. Java must be on PATH.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one generated caption (str) per item.
    references: one list of reference captions (at least one) per item.
    tokenize: True (default) runs coco-caption's PTBTokenizer over predictions and references. False
        takes them as already tokenized (space-separated tokens): only whitespace is normalised
        (runs of spaces and newlines become one space, which METEOR's line protocol needs).
Returns:
    dict of floats: bleu_1, bleu_2, bleu_3, bleu_4, meteor, rouge_l, cider.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CocoCaption(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Sequence(datasets.Value("string"))}
            ),
            codebase_urls=["https://github.com/salaniz/pycocoevalcap", "https://github.com/tylin/coco-caption"],
        )

    def _compute(self, predictions, references, tokenize=True):
        if not predictions:
            raise ValueError("coco_caption: no predictions")
        if any(len(refs) == 0 for refs in references):
            raise ValueError("coco_caption: every prediction needs at least one reference")
        if shutil.which("java") is None:
            raise RuntimeError("coco_caption: METEOR and the PTB tokenizer need Java on PATH")
        if tokenize:
            tokenizer = PTBTokenizer()
            gts = tokenizer.tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(references)})
            res = tokenizer.tokenize({i: [{"caption": p}] for i, p in enumerate(predictions)})
        else:
            gts = {i: [" ".join(r.split()) for r in refs] for i, refs in enumerate(references)}
            res = {i: [" ".join(p.split())] for i, p in enumerate(predictions)}

        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        meteor = Meteor()  # one JVM per call (~5 s start-up: it loads the paraphrase table)
        try:
            meteor_score, _ = meteor.compute_score(gts, res)
        finally:  # Meteor.__del__ takes a lock that an exception inside compute_score leaves held
            meteor.meteor_p.kill()
            meteor.meteor_p.communicate()  # reaps the JVM, closes its pipes
            meteor.lock = threading.Lock()
        rouge, _ = Rouge().compute_score(gts, res)
        cider, _ = Cider().compute_score(gts, res)
        out = {f"bleu_{n + 1}": float(b) for n, b in enumerate(bleu)}
        out.update(meteor=float(meteor_score), rouge_l=float(rouge), cider=float(cider))
        return out
