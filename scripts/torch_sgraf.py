"""A PyTorch re-statement of SGR/SAF (the encoders, SGR, SAF and the losses), for diagnosing training behaviour on vsl's data.

Not the reference itself: written from the reference's description, checked against the golden files (`check`), then used to train on
a vsl dataset with the same recipe as vsl (`train`), so that "does SGR learn on this data?" can be asked of torch's
autograd and optimiser rather than of vsl's. Hinge loss only (no VSL term). Defaults = the demo recipe's dims,
batch, lr and dropout (configs/demo_synthetic.json); the last partial batch of an epoch is dropped.
Measured 2026-11-27 (dev rsum per epoch, lr 0.002 constant, README *Limits*): --sgr-step 1, seeds 1-4:
77/33/67/101/213/301/515/561, 161/589, 62/64/128/345/597, 57/114/491/595; 3 steps, seed 1: 72/40/95/105/139/189.
Needs Debian's python3-torch, python3-numpy, python3-h5py (check only).

  /usr/bin/python3 scripts/torch_sgraf.py check test/fixtures/golden/SGR.h5
  /usr/bin/python3 scripts/torch_sgraf.py train --module SGR --data data/f30k_precomp --epochs 4
"""
import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def l2norm(x, dim=-1):
    return x / (x.pow(2).sum(dim, keepdim=True).sqrt() + 1e-8)


def l1norm(x, dim=-1):
    return x / (x.abs().sum(dim, keepdim=True) + 1e-8)


def xavier(lin):
    r = math.sqrt(6.0) / math.sqrt(lin.in_features + lin.out_features)
    lin.weight.data.uniform_(-r, r)
    lin.bias.data.fill_(0)
    return lin


class ImgEnc(nn.Module):
    def __init__(s, img_dim, d):
        super().__init__()
        s.fc = xavier(nn.Linear(img_dim, d))

    def forward(s, x):
        return l2norm(s.fc(x))


class TxtEnc(nn.Module):
    def __init__(s, vocab, word_dim, d, drop):
        super().__init__()
        s.embed = nn.Embedding(vocab, word_dim)
        s.embed.weight.data.uniform_(-0.1, 0.1)
        s.dropout = nn.Dropout(drop)
        s.cap_rnn = nn.GRU(word_dim, d, 1, batch_first=True, bidirectional=True)
        s.d = d

    def forward(s, caps, lens):
        x = s.dropout(s.embed(caps))
        packed = nn.utils.rnn.pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        out, _ = s.cap_rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=caps.shape[1])
        out = (out[:, :, :s.d] + out[:, :, s.d:]) / 2
        return l2norm(out)


class SelfAttentionGlobal(nn.Module):
    """VisualSA (bn=True: BatchNorm1d over the 36 region slots / the features) and TextSA (no BatchNorm)."""

    def __init__(s, d, drop, bn, k=36):
        super().__init__()
        norm = (lambda c: [nn.BatchNorm1d(c)]) if bn else (lambda c: [])
        s.embedding_local = nn.Sequential(xavier(nn.Linear(d, d)), *norm(k), nn.Tanh(), nn.Dropout(drop))
        s.embedding_global = nn.Sequential(xavier(nn.Linear(d, d)), *norm(d), nn.Tanh(), nn.Dropout(drop))
        s.embedding_common = nn.Sequential(xavier(nn.Linear(d, 1)))

    def forward(s, local, raw_global):
        l = s.embedding_local(local)
        g = s.embedding_global(raw_global)
        w = F.softmax(s.embedding_common(l * g.unsqueeze(1)).squeeze(2), dim=1)
        return l2norm((w.unsqueeze(2) * local).sum(1))


class GraphReasoning(nn.Module):
    def __init__(s, sd):
        super().__init__()
        s.graph_query_w = xavier(nn.Linear(sd, sd))
        s.graph_key_w = xavier(nn.Linear(sd, sd))
        s.sim_graph_w = xavier(nn.Linear(sd, sd))

    def forward(s, nd):
        q = s.graph_query_w(nd)
        k = s.graph_key_w(nd)
        e = F.softmax(torch.bmm(q, k.transpose(1, 2)), dim=-1)
        return F.relu(s.sim_graph_w(torch.bmm(e, nd)))


class AttentionFiltration(nn.Module):
    def __init__(s, sd):
        super().__init__()
        s.attn_sim_w = xavier(nn.Linear(sd, 1))
        s.bn = nn.BatchNorm1d(1)

    def forward(s, nd):
        a = l1norm(torch.sigmoid(s.bn(s.attn_sim_w(nd).permute(0, 2, 1))), dim=-1)
        return l2norm(torch.matmul(a, nd).squeeze(1))


def inter_attention(words, regions, smooth=9.0):
    """words (n, L, D), regions (n, K, D) -> attended context (n, L, D)."""
    a = F.leaky_relu(torch.bmm(regions, words.transpose(1, 2)), 0.1)  # (n, K, L)
    a = l2norm(a, 2).transpose(1, 2)  # (n, L, K)
    a = F.softmax(a * smooth, dim=2)
    return l2norm(torch.bmm(a, regions))


class SimEnc(nn.Module):
    def __init__(s, d, sd, module, steps, drop):
        super().__init__()
        s.module = module
        s.v_global_w = SelfAttentionGlobal(d, drop, bn=True)
        s.t_global_w = SelfAttentionGlobal(d, drop, bn=False)
        s.sim_tranloc_w = xavier(nn.Linear(d, sd))
        s.sim_tranglo_w = xavier(nn.Linear(d, sd))
        s.sim_eval_w = xavier(nn.Linear(sd, 1))
        if module == 'SGR':
            s.SGR_module = nn.ModuleList([GraphReasoning(sd) for _ in range(steps)])
        else:
            s.SAF_module = AttentionFiltration(sd)

    def forward(s, img, cap, lens):
        n_img = img.shape[0]
        v_glo = s.v_global_w(img, img.mean(1))
        cols = []
        for i, L in enumerate(lens):
            w = cap[i, :L].unsqueeze(0)
            t_glo = s.t_global_w(w, w.mean(1))
            wr = w.repeat(n_img, 1, 1)
            ctx = inter_attention(wr, img)
            s_loc = l2norm(s.sim_tranloc_w((ctx - wr).pow(2)))
            s_glo = l2norm(s.sim_tranglo_w((v_glo - t_glo).pow(2)))
            nd = torch.cat([s_glo.unsqueeze(1), s_loc], 1)
            if s.module == 'SGR':
                for m in s.SGR_module:
                    nd = m(nd)
                vec = nd[:, 0, :]
            else:
                vec = s.SAF_module(nd)
            cols.append(torch.sigmoid(s.sim_eval_w(vec)))
        return torch.cat(cols, 1)


class Model(nn.Module):
    def __init__(s, vocab, img_dim, word_dim, d, sd, module, steps=3, drop=0.4):
        super().__init__()
        s.img_enc = ImgEnc(img_dim, d)
        s.txt_enc = TxtEnc(vocab, word_dim, d, drop)
        s.sim_enc = SimEnc(d, sd, module, steps, drop)

    def forward(s, ims, caps, lens):
        return s.sim_enc(s.img_enc(ims), s.txt_enc(caps, lens), lens)


def hinge(S, margin, max_violation):
    d = S.diag()
    cost_s = (margin + S - d.view(-1, 1)).clamp(min=0)
    cost_im = (margin + S - d.view(1, -1)).clamp(min=0)
    eye = torch.eye(S.shape[0], dtype=torch.bool)
    cost_s = cost_s.masked_fill(eye, 0)
    cost_im = cost_im.masked_fill(eye, 0)
    if max_violation:
        return cost_s.max(1)[0].sum() + cost_im.max(0)[0].sum()
    return cost_s.sum() + cost_im.sum()


# ---------------------------------------------------------------------------------------------------------------

def check(path):
    import h5py
    f = h5py.File(path, 'r')
    opt = json.loads(f.attrs['opt_json'])
    module = opt['module_name']
    w = {k: torch.as_tensor(np.asarray(f['weights'][k][()])) for k in f['weights'].keys()}
    vocab = w['txt_enc.embed.weight'].shape[0]
    m = Model(vocab, opt['img_dim'], opt['word_dim'], opt['embed_size'], opt['sim_dim'], module, opt['sgr_step'])
    missing = m.load_state_dict(w, strict=True)
    m.eval()
    ims = torch.from_numpy(f['inputs/images'][()])
    caps = torch.from_numpy(f['inputs/captions'][()])
    lens = [int(x) for x in f['inputs/lengths'][()]]
    with torch.no_grad():
        sims = m(ims, caps, lens).numpy()
    want = f['outputs/sims_4x6'][()]
    err = float(np.abs(sims - want).max())
    print(f'{module}: sims_4x6 max abs error {err:.3g}', missing)
    return err


def read_split(data, split, vocab, max_caps=None):
    ims = np.load(f'{data}/{split}_ims.npy')
    lines = open(f'{data}/{split}_caps.txt').read().strip().split('\n')
    if max_caps:
        lines = lines[:max_caps]
        ims = ims[:len(lines) // 5]
    w2i = vocab['word2idx']
    caps = []
    for line in lines:
        toks = line.lower().replace('.', ' . ').split()
        caps.append([w2i['<start>']] + [w2i.get(t, w2i['<unk>']) for t in toks] + [w2i['<end>']])
    return ims, caps


def batch_caps(caps):
    lens = [len(c) for c in caps]
    out = torch.zeros(len(caps), max(lens), dtype=torch.long)
    for i, c in enumerate(caps):
        out[i, :len(c)] = torch.tensor(c)
    return out, lens


def recall(sims):
    """sims (n_img, 5 n_img): rsum of i2t and t2i R@1/5/10."""
    n = sims.shape[0]
    i2t = []
    for i in range(n):
        order = np.argsort(-sims[i])
        i2t.append(min(np.where(order == j)[0][0] for j in range(5 * i, 5 * i + 5)))
    t2i = []
    for j in range(sims.shape[1]):
        order = np.argsort(-sims[:, j])
        t2i.append(np.where(order == j // 5)[0][0])
    i2t, t2i = np.array(i2t), np.array(t2i)
    r = [100 * np.mean(i2t < k) for k in (1, 5, 10)] + [100 * np.mean(t2i < k) for k in (1, 5, 10)]
    return sum(r), r


def evaluate(m, ims, caps):
    m.eval()
    with torch.no_grad():
        c, lens = batch_caps(caps)
        img = m.img_enc(torch.from_numpy(ims))
        cap = m.txt_enc(c, lens)
        cols = []
        for s in range(0, len(caps), 100):
            cols.append(m.sim_enc(img, cap[s:s + 100], lens[s:s + 100]))
        sims = torch.cat(cols, 1).numpy()
    m.train()
    return recall(sims)


def train(a):
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    vocab = json.load(open(a.vocab))
    tr_ims, tr_caps = read_split(a.data, 'train', vocab)
    dv_ims, dv_caps = read_split(a.data, 'dev', vocab, 500)
    m = Model(len(vocab['word2idx']), tr_ims.shape[2], a.word_dim, a.embed, a.sim_dim, a.module, a.sgr_step, a.dropout)
    opt = torch.optim.Adam(m.parameters(), lr=a.lr)
    print('dev before', evaluate(m, dv_ims, dv_caps)[0], flush=True)
    for ep in range(a.epochs):
        for g in opt.param_groups:
            g['lr'] = a.lr * 0.1 ** (ep // a.lr_update)
        order = rng.permutation(len(tr_caps))
        t0, tot = time.time(), 0.0
        nb = len(order) // a.batch
        for b in range(nb):
            idx = order[b * a.batch:(b + 1) * a.batch]
            caps, lens = batch_caps([tr_caps[i] for i in idx])
            ims = torch.from_numpy(tr_ims[idx // 5])
            S = m(ims, caps, lens)
            loss = hinge(S, 0.2, a.max_violation or ep >= a.warmup_sum)
            opt.zero_grad()
            loss.backward()
            gn = float(nn.utils.clip_grad_norm_(m.parameters(), a.grad_clip))
            opt.step()
            tot += float(loss)
            if b % 20 == 0:
                print(f'ep {ep} it {b}/{nb} loss {float(loss):.2f} gnorm {gn:.1f} S[mean {float(S.mean()):.3f} '
                      f'std {float(S.std()):.4f}]', flush=True)
        rs, r = evaluate(m, dv_ims, dv_caps)
        print(f'epoch {ep} mean loss {tot / nb:.2f} time {time.time() - t0:.0f}s dev rsum {rs:.1f} {np.round(r, 1)}',
              flush=True)


if __name__ == '__main__':
    if sys.argv[1] == 'check':
        sys.exit(0 if all(check(p) < 1e-5 for p in sys.argv[2:]) else 1)
    p = argparse.ArgumentParser()
    p.add_argument('cmd')
    p.add_argument('--module', default='SGR')
    p.add_argument('--data', default='data/f30k_precomp')
    p.add_argument('--vocab', default='data/f30k_precomp_vocab.json')
    p.add_argument('--word-dim', type=int, default=64)
    p.add_argument('--embed', type=int, default=128)
    p.add_argument('--sim-dim', type=int, default=64)
    p.add_argument('--sgr-step', type=int, default=3)
    p.add_argument('--dropout', type=float, default=0.4)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--lr', type=float, default=0.002)
    p.add_argument('--lr-update', type=int, default=3)
    p.add_argument('--epochs', type=int, default=4)
    p.add_argument('--grad-clip', type=float, default=2.0)
    p.add_argument('--max-violation', action='store_true')
    p.add_argument('--warmup-sum', type=int, default=10 ** 9)
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--threads', type=int, default=2)
    train(p.parse_args())
