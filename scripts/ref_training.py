#!/usr/bin/python3
"""Run the reference's own training code (ZhangXu0963/VSL, patched for CPU) from a checkpoint it wrote at its own
initialisation, so that `vsl train --init-from` can be compared with it step by step (docs/fidelity-training.md).
Run with Debian's /usr/bin/python3 (torch, numpy, h5py, nltk, sklearn).

    ref_training.py nodrop --ref VSL_cpu --out DIR
        copy the reference to DIR with every dropout probability set to 0 (model.py: the word embedding's
        nn.Dropout(0.4), VisualSA(embed_size, 0.4, 36), TextSA(embed_size, 0.4)); nothing else changes
    ref_training.py init --ref DIR --out FILE --seed N -- <reference options>
        torch.manual_seed(N); SGRAF(opt) of the reference's model.py; saved by its train.py's save_checkpoint
        ({epoch 0, model, best_rsum 0, opt, Eiters 0}; torch 1.13 writes the zip container);
        --legacy also writes FILE with torch's legacy container (same content)
    ref_training.py train --ref DIR --init FILE [--torch-seed N] -- <reference options>
        the reference's train.main() with the model's weights loaded from FILE right after SGRAF(opt) is built
        (--torch-seed seeds torch first: with dropout 0 it only changes the DataLoader's shuffle, i.e. the order
        of equal-length captions in a batch that holds the whole split; --float64 runs the same code in float64,
        the model cast with .double() and its inputs with it: the exact trajectory float32 approximates);
        its log lines go to stderr as usual; one JSON line per logged step (parsed from the reference's own
        'Epoch: [e][i/n] Eit ...' line) and per validation (the r_sum its validate() returns) on stdout
    ref_training.py evalrank --ref DIR --model FILE --data-path P --split S [--fold5]
        the reference's eval_single.evalrank(FILE, P, S) (it reads ./vocab/<data_name>_vocab.json: run it from a
        directory holding vocab/); prints its output and one JSON line {"rsum": ...}

    ref_training.py compare --ref-log REF.jsonl --vsl-run DIR [--tol 1e-3] [--truth F64.jsonl]
        the losses of every step (by iteration) and the dev rsum of every epoch, the reference's (JSON lines of
        `train`) beside vsl's (DIR/train.log, DIR/metrics.jsonl), as a Markdown table; exits 1 when a loss differs
        by more than --tol relative (the reference logs 4 decimals) or an rsum differs by more than 0.05;
        --truth adds the float64 run's loss and rsum and each float32 run's distance from it

<reference options> are opts.py's flags (--data_path, --batch_size, --img_dim, ...), as train.py takes them.
"""
import argparse
import io
import json
import logging
import os
import re
import shutil
import sys
import types


def load_reference(ref):
    """Import the reference from `ref` with the shims it needs offline: its train.py imports `evaluation` (the
    repository ships eval_single.py) and tensorboard_logger (not installable here); nltk's word_tokenize needs the
    punkt data, so the tokenizer it applies after sentence splitting is used (the same for one-sentence captions)."""
    sys.path.insert(0, os.path.abspath(ref))
    import nltk
    import nltk.tokenize

    tok = nltk.tokenize.NLTKWordTokenizer()
    nltk.tokenize.word_tokenize = lambda text, language='english', preserve_line=False: tok.tokenize(text)
    nltk.word_tokenize = nltk.tokenize.word_tokenize
    tb = types.ModuleType('tensorboard_logger')
    tb.configure = lambda *a, **k: None
    tb.log_value = lambda *a, **k: None
    sys.modules['tensorboard_logger'] = tb
    import eval_single

    sys.modules['evaluation'] = eval_single
    import torch

    torch.set_num_threads(int(os.environ.get('REF_THREADS', '2')))
    import train

    return train, torch


def parse_reference_opt(train_mod, argv):
    saved = sys.argv
    sys.argv = ['train.py'] + argv
    try:
        with open(os.devnull, 'w') as null:
            out, sys.stdout = sys.stdout, null
            try:
                return train_mod.opts.parse_opt()
            finally:
                sys.stdout = out
    finally:
        sys.argv = saved


def cmd_nodrop(a):
    if os.path.exists(a.out):
        sys.exit(f'{a.out}: exists; remove it first')
    shutil.copytree(a.ref, a.out)
    path = os.path.join(a.out, 'model.py')
    src = open(path).read()
    for old, new in [
        ('self.dropout = nn.Dropout(0.4)', 'self.dropout = nn.Dropout(0.0)'),
        ('self.v_global_w = VisualSA(embed_size, 0.4, 36)', 'self.v_global_w = VisualSA(embed_size, 0.0, 36)'),
        ('self.t_global_w = TextSA(embed_size, 0.4)', 'self.t_global_w = TextSA(embed_size, 0.0)'),
    ]:
        if src.count(old) != 1:
            sys.exit(f'{path}: expected one "{old}", found {src.count(old)}')
        src = src.replace(old, new)
    left = re.findall(r'Dropout\((?!0\.0\)|dropout_rate\))[^)]*\)', src)
    if left:
        sys.exit(f'{path}: dropout sites left unpatched: {left}')
    open(path, 'w').write(src)
    print(f'{a.out}: the reference with every dropout probability 0')


def cmd_init(a, rest):
    train, torch = load_reference(a.ref)
    opt = parse_reference_opt(train, rest)
    vocab = train.deserialize_vocab(os.path.join(opt.vocab_path, '%s_vocab.json' % opt.data_name))
    opt.vocab_size = len(vocab)  # as train.main does
    torch.manual_seed(a.seed)
    model = train.SGRAF(opt)
    state = {'epoch': 0, 'model': model.state_dict(), 'best_rsum': 0, 'opt': opt, 'Eiters': model.Eiters}
    d = os.path.dirname(os.path.abspath(a.out))
    train.save_checkpoint(state, False, filename=os.path.basename(a.out), prefix=d + '/')
    print(f'{a.out}: SGRAF({opt.module_name}) at its initialisation, seed {a.seed}, vocab {opt.vocab_size}')
    if a.legacy:
        torch.save(state, a.legacy, _use_new_zipfile_serialization=False)
        print(f'{a.legacy}: the same, legacy container')


JSON_OUT = sys.stdout
STEP_LINE = re.compile(r'Epoch: \[(\d+)\]\[(\d+)/(\d+)\]\s+(.*?)\tTime')
METER = re.compile(r'(\w+) (-?[\d.eE+-]+)(?: \((-?[\d.eE+-]+)\))?')


class StepLog(logging.Handler):
    """The reference's own log line of a step, as JSON: epoch, step, steps and every meter it shows."""

    def emit(self, record):
        m = STEP_LINE.search(record.getMessage())
        if not m:
            return
        rec = {'epoch': int(m.group(1)), 'step': int(m.group(2)), 'steps': int(m.group(3))}
        for name, val, _avg in METER.findall(m.group(4)):
            rec[name] = float(val)
        print(json.dumps({'kind': 'step', **rec}), file=JSON_OUT, flush=True)


def to_double(model):
    """The model in float64 (its parameters change dtype in place, so the optimizer keeps them) and every float
    input cast on the way in: the images, the TF-IDF rows, the embeddings validation hands to forward_sim."""
    for m in (model.img_enc, model.txt_enc, model.sim_enc):
        m.double()
    emb, sim, cider = model.forward_emb, model.forward_sim, model.cider_com.cider_for_image
    model.forward_emb = lambda images, captions, lengths: emb(images.double(), captions, lengths)
    model.forward_sim = lambda img, cap, lens: sim(img.double(), cap.double(), lens)
    model.cider_com.cider_for_image = lambda t: cider(t.double())


def cmd_train(a, rest):
    train, torch = load_reference(a.ref)
    if a.torch_seed is not None:
        torch.manual_seed(a.torch_seed)
    init = torch.load(a.init, map_location='cpu')
    built = train.SGRAF

    def from_init(opt):
        model = built(opt)
        model.load_state_dict(init['model'])
        if a.float64:
            to_double(model)
        return model

    train.SGRAF = from_init
    validate = train.validate
    epoch = {'n': 0}

    def validate_and_tell(opt, val_loader, model):
        r_sum = validate(opt, val_loader, model)
        print(json.dumps({'kind': 'validation', 'epoch': epoch['n'], 'Eiters': model.Eiters, 'rsum': r_sum}),
              file=JSON_OUT, flush=True)
        return r_sum

    train.validate = validate_and_tell
    one_epoch = train.train

    def train_and_count(opt, loader, model, e, val_loader):
        epoch['n'] = e
        return one_epoch(opt, loader, model, e, val_loader)

    train.train = train_and_count
    # train.main's own basicConfig (this one, so that the step lines are also parsed from its handler's records)
    logging.basicConfig(format='%(asctime)s %(message)s', level=logging.INFO)
    logging.getLogger().addHandler(StepLog())
    saved = sys.argv, sys.stdout
    sys.argv = ['train.py'] + rest
    sys.stdout = sys.stderr  # the reference's own prints go to stderr; stdout carries the JSON lines
    try:
        train.main()
    finally:
        sys.argv, sys.stdout = saved


def cmd_evalrank(a):
    load_reference(a.ref)
    import eval_single

    out = io.StringIO()
    real = sys.stdout
    sys.stdout = out
    try:
        eval_single.evalrank(a.model, data_path=a.data_path, split=a.split, fold5=a.fold5)
    finally:
        sys.stdout = real
    text = out.getvalue()
    sys.stderr.write(text)
    m = re.findall(r'^rsum: ([\d.]+)', text, re.M)
    print(json.dumps({'rsum': float(m[-1]) if m else None}))


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def cmd_compare(a):
    ref = read_jsonl(a.ref_log)
    truth = read_jsonl(a.truth) if a.truth else []
    t_steps = {int(r['Eit']): r for r in truth if r['kind'] == 'step'}
    t_val = {r['epoch']: r for r in truth if r['kind'] == 'validation'}
    vsl_log = read_jsonl(os.path.join(a.vsl_run, 'train.log'))
    vsl_steps = {r['iteration']: r for r in vsl_log if r.get('msg') == 'step'}
    vsl_val = {r['epoch']: r for r in read_jsonl(os.path.join(a.vsl_run, 'metrics.jsonl'))
               if r.get('where') == 'end of epoch'}
    worst = {'loss': 0.0, 'hinge': 0.0, 'vsl': 0.0}
    bad = []
    head = '| iteration | epoch | lr | loss ref | loss vsl | hinge ref | hinge vsl | VSL ref | VSL vsl | max rel |'
    rule = '|---|---|---|---|---|---|---|---|---|---|'
    if truth:
        head += ' loss f64 | ref - f64 | vsl - f64 |'
        rule += '---|---|---|'
    print(head)
    print(rule)
    for r in (r for r in ref if r['kind'] == 'step'):
        it = int(r['Eit'])
        v = vsl_steps.get(it)
        if v is None:
            bad.append(f'iteration {it}: no vsl step record')
            continue
        rel = {}
        for name, rk, vk in [('loss', 'Loss', 'loss'), ('hinge', 'Tripliet_loss', 'hinge'),
                             ('vsl', 'Visual_Semantic_loss', 'semantic')]:
            rel[name] = abs(v[vk] - r[rk]) / max(abs(r[rk]), 1e-12)
            worst[name] = max(worst[name], rel[name])
        m = max(rel.values())
        if m > a.tol or abs(v['lr'] - r['lr']) > 1e-12 * r['lr']:
            bad.append(f'iteration {it}: relative difference {m:.2e}, lr {r["lr"]} / {v["lr"]}')
        line = (f'| {it} | {r["epoch"]} | {r["lr"]:g} | {r["Loss"]:.4f} | {v["loss"]:.4f} | {r["Tripliet_loss"]:.4f} | '
                f'{v["hinge"]:.4f} | {r["Visual_Semantic_loss"]:.4f} | {v["semantic"]:.4f} | {m:.1e} |')
        t = t_steps.get(it)
        if truth and t:
            line += (f' {t["Loss"]:.4f} | {abs(r["Loss"] - t["Loss"]) / t["Loss"]:.1e} | '
                     f'{abs(v["loss"] - t["Loss"]) / t["Loss"]:.1e} |')
        print(line)
    print()
    print('| epoch | dev rsum ref | dev rsum vsl |' + (' dev rsum f64 |' if truth else ''))
    print('|---|---|---|' + ('---|' if truth else ''))
    for r in (r for r in ref if r['kind'] == 'validation'):
        v = vsl_val.get(r['epoch'])
        got = v['rsum'] if v else float('nan')
        if v is None or abs(got - r['rsum']) > 0.05:
            bad.append(f'epoch {r["epoch"]}: dev rsum {r["rsum"]} (reference) vs {got} (vsl)')
        t = t_val.get(r['epoch'])
        print(f'| {r["epoch"]} | {r["rsum"]:.2f} | {got:.2f} |' + (f' {t["rsum"]:.2f} |' if truth and t else ''))
    print()
    print('largest relative difference: loss %.2e, hinge %.2e, VSL %.2e' % (worst['loss'], worst['hinge'], worst['vsl']))
    for b in bad:
        print('MISMATCH ' + b)
    sys.exit(1 if bad else 0)


def main():
    argv = sys.argv[1:]
    rest = []
    if '--' in argv:
        i = argv.index('--')
        argv, rest = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('nodrop')
    s.add_argument('--ref', required=True)
    s.add_argument('--out', required=True)
    s = sub.add_parser('init')
    s.add_argument('--ref', required=True)
    s.add_argument('--out', required=True)
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--legacy')
    s = sub.add_parser('train')
    s.add_argument('--ref', required=True)
    s.add_argument('--init', required=True)
    s.add_argument('--torch-seed', type=int)
    s.add_argument('--float64', action='store_true')
    s = sub.add_parser('evalrank')
    s.add_argument('--ref', required=True)
    s.add_argument('--model', required=True)
    s.add_argument('--data-path', required=True)
    s.add_argument('--split', default='test')
    s.add_argument('--fold5', action='store_true')
    s = sub.add_parser('compare')
    s.add_argument('--ref-log', required=True)
    s.add_argument('--vsl-run', required=True)
    s.add_argument('--tol', type=float, default=1e-3)
    s.add_argument('--truth', help='the same run of the reference in float64 (train --float64)')
    a = p.parse_args(argv)
    if a.cmd == 'nodrop':
        cmd_nodrop(a)
    elif a.cmd == 'init':
        cmd_init(a, rest)
    elif a.cmd == 'train':
        cmd_train(a, rest)
    elif a.cmd == 'evalrank':
        cmd_evalrank(a)
    else:
        cmd_compare(a)


if __name__ == '__main__':
    main()
