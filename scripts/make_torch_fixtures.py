#!/usr/bin/python3
"""Generate the torch checkpoint fixtures under test/fixtures/torch/ (run with Debian's /usr/bin/python3).

    /usr/bin/python3 scripts/make_torch_fixtures.py

Everything is seeded, so re-running rewrites the same tensors (the zip containers embed no timestamps that matter
to the tests). Files written:

  sgr.zip.pth.tar, sgr.legacy.pth.tar   SGR checkpoint {epoch, model: [img_enc, txt_enc, sim_enc], best_rsum, opt, Eiters}
  saf.zip.pth.tar, saf.legacy.pth.tar   same for SAF
  sgr.h5, saf.h5                        the same weights as HDF5: weights/<img_enc.|txt_enc.|sim_enc.key>, file
                                        attributes opt_json, epoch, Eiters, best_rsum, module
  flat.zip.pth.tar                      a checkpoint whose `model` is one flat state dict (img_enc.* keys ...)
  sgr.zip64.pth.tar                     sgr.zip.pth.tar re-packed with zip64 central-directory records, the
                                        prefix `archive/` (torch >= 2 naming) and unaligned storage entries
  views.zip.pth.tar, views.legacy.pth.tar
                                        a dict of non-contiguous / offset / shared-storage / other-dtype tensors
  views.h5                              expected/<name>: the contiguous values of each of them
  nomodel.zip.pth.tar                   a checkpoint dict without a `model` key
  short_storage.zip.pth.tar             a zip whose data/0 entry holds fewer bytes than its storage declares
  hostile.zip.pth.tar, hostile.legacy.pth.tar
                                        pickles that call posix.system('touch /tmp/vsl-hostile-pickle-ran') when
                                        torch.load-ed by Python (this script checks that they really do)
  hostile_eval.zip.pth.tar              same idea through builtins.eval, placed after a real tensor
"""
import argparse
import io
import json
import os
import pickletools
import sys
import zipfile
from collections import OrderedDict

import h5py
import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'torch')
MARKER = '/tmp/vsl-hostile-pickle-ran'


# ---------------------------------------------------------------- the option parser of SGRAF/VSL opts.py
def make_parser():
    p = argparse.ArgumentParser()
    p.add_argument('--data_path', default='./data')
    p.add_argument('--data_name', default='coco_precomp')
    p.add_argument('--vocab_path', default='./vocab')
    p.add_argument('--model_name', default='./checkpoint')
    p.add_argument('--logger_name', default='./log')
    p.add_argument('--batch_size', default=128, type=int)
    p.add_argument('--num_epochs', default=40, type=int)
    p.add_argument('--lr_update', default=30, type=int)
    p.add_argument('--learning_rate', default=.0002, type=float)
    p.add_argument('--workers', default=10, type=int)
    p.add_argument('--log_step', default=10, type=int)
    p.add_argument('--val_step', default=1000, type=int)
    p.add_argument('--grad_clip', default=2., type=float)
    p.add_argument('--margin', default=0.2, type=float)
    p.add_argument('--max_violation', action='store_false')
    p.add_argument('--img_dim', default=2048, type=int)
    p.add_argument('--word_dim', default=300, type=int)
    p.add_argument('--embed_size', default=1024, type=int)
    p.add_argument('--sim_dim', default=256, type=int)
    p.add_argument('--num_layers', default=1, type=int)
    p.add_argument('--bi_gru', action='store_false')
    p.add_argument('--no_imgnorm', action='store_true')
    p.add_argument('--no_txtnorm', action='store_true')
    p.add_argument('--module_name', default='SGR', type=str)
    p.add_argument('--sgr_step', default=3, type=int)
    return p


def make_opt(module_name):
    opt = make_parser().parse_args([
        '--data_name', 'f30k_precomp', '--img_dim', '8', '--word_dim', '4', '--embed_size', '6',
        '--sim_dim', '4', '--module_name', module_name, '--sgr_step', '3'])
    opt.vocab_size = 10
    return opt


# ---------------------------------------------------------------- modules with the reference's parameter names
class EncoderImage(nn.Module):
    def __init__(self, img_dim, embed_size):
        super().__init__()
        self.fc = nn.Linear(img_dim, embed_size)


class EncoderText(nn.Module):
    def __init__(self, vocab_size, word_dim, embed_size, num_layers, bi_gru):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, word_dim)
        self.cap_rnn = nn.GRU(word_dim, embed_size, num_layers, batch_first=True, bidirectional=bi_gru)


class VisualSA(nn.Module):
    def __init__(self, d, num_region):
        super().__init__()
        self.embedding_local = nn.Sequential(nn.Linear(d, d), nn.BatchNorm1d(num_region), nn.Tanh(), nn.Dropout(0.4))
        self.embedding_global = nn.Sequential(nn.Linear(d, d), nn.BatchNorm1d(d), nn.Tanh(), nn.Dropout(0.4))
        self.embedding_common = nn.Sequential(nn.Linear(d, 1))


class TextSA(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.embedding_local = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Dropout(0.4))
        self.embedding_global = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Dropout(0.4))
        self.embedding_common = nn.Sequential(nn.Linear(d, 1))


class GraphReasoning(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.graph_query_w = nn.Linear(s, s)
        self.graph_key_w = nn.Linear(s, s)
        self.sim_graph_w = nn.Linear(s, s)


class AttentionFiltration(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.attn_sim_w = nn.Linear(s, 1)
        self.bn = nn.BatchNorm1d(1)


class EncoderSimilarity(nn.Module):
    def __init__(self, embed_size, sim_dim, module_name, sgr_step):
        super().__init__()
        self.v_global_w = VisualSA(embed_size, 36)
        self.t_global_w = TextSA(embed_size)
        self.sim_tranloc_w = nn.Linear(embed_size, sim_dim)
        self.sim_tranglo_w = nn.Linear(embed_size, sim_dim)
        self.sim_eval_w = nn.Linear(sim_dim, 1)
        if module_name == 'SGR':
            self.SGR_module = nn.ModuleList([GraphReasoning(sim_dim) for _ in range(sgr_step)])
        else:
            self.SAF_module = AttentionFiltration(sim_dim)


def make_checkpoint(module_name, seed):
    opt = make_opt(module_name)
    torch.manual_seed(seed)
    img_enc = EncoderImage(opt.img_dim, opt.embed_size)
    txt_enc = EncoderText(opt.vocab_size, opt.word_dim, opt.embed_size, opt.num_layers, opt.bi_gru)
    sim_enc = EncoderSimilarity(opt.embed_size, opt.sim_dim, opt.module_name, opt.sgr_step)
    g = torch.Generator().manual_seed(seed + 1)
    nbt = 0
    with torch.no_grad():
        for m in (img_enc, txt_enc, sim_enc):
            for name, t in m.state_dict(keep_vars=True).items():
                if t.dtype == torch.float32:
                    t.copy_(torch.randn(t.shape, generator=g))
                    if name.endswith('running_var'):
                        t.abs_().add_(0.5)
                else:
                    # num_batches_tracked: int64 0-d; one of them beyond 2**32 to check 64-bit reading
                    nbt += 1
                    t.fill_(nbt * 1000 + 7 if nbt != 2 else 2 ** 40 + 3)
    # best_rsum as the reference computes it: a sum of numpy float64 recalls
    r = [np.float64(x) for x in (71.9, 92.4, 96.1, 53.37, 79.86, 86.94)]
    best_rsum = r[0] + r[1] + r[2] + r[3] + r[4] + r[5]
    assert type(best_rsum) is np.float64
    ckpt = {
        'epoch': 17 if module_name == 'SGR' else 23,
        'model': [img_enc.state_dict(), txt_enc.state_dict(), sim_enc.state_dict()],
        'best_rsum': best_rsum,
        'opt': opt,
        'Eiters': 123456 if module_name == 'SGR' else 654321,
    }
    return ckpt


def save_both(obj, stem):
    torch.save(obj, os.path.join(OUT, stem + '.zip.pth.tar'))
    torch.save(obj, os.path.join(OUT, stem + '.legacy.pth.tar'), _use_new_zipfile_serialization=False)


def write_h5(ckpt, path):
    with h5py.File(path, 'w') as f:
        w = f.create_group('weights')
        for prefix, sd in zip(('img_enc.', 'txt_enc.', 'sim_enc.'), ckpt['model']):
            for k, t in sd.items():
                w.create_dataset(prefix + k, data=t.numpy())
        f.attrs['opt_json'] = json.dumps(vars(ckpt['opt']))
        f.attrs['module'] = ckpt['opt'].module_name
        f.attrs['epoch'] = np.int64(ckpt['epoch'])
        f.attrs['Eiters'] = np.int64(ckpt['Eiters'])
        f.attrs['best_rsum'] = np.float64(ckpt['best_rsum'])
        f.attrs['key_order_json'] = json.dumps([[p + k for k in sd.keys()] for p, sd in
                                                zip(('img_enc.', 'txt_enc.', 'sim_enc.'), ckpt['model'])])


# ---------------------------------------------------------------- re-packing a torch zip (zip64, other prefix)
def repack_zip64(src, dst, new_prefix):
    zin = zipfile.ZipFile(src)
    entries = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
    old_prefix = entries[0][0].split('/')[0]
    saved = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 0  # every size and offset "exceeds" the limit: zip64 extras everywhere + zip64 EOCD
    try:
        with zipfile.ZipFile(dst, 'w', compression=zipfile.ZIP_STORED, allowZip64=True) as zout:
            # a 1-byte comment-free dummy first would shift alignment; instead rely on the entry names' lengths
            for name, data in entries:
                zi = zipfile.ZipInfo(new_prefix + name[len(old_prefix):], date_time=(2020, 1, 1, 0, 0, 0))
                zi.compress_type = zipfile.ZIP_STORED
                zout.writestr(zi, data)
    finally:
        zipfile.ZIP64_LIMIT = saved
    raw = open(dst, 'rb').read()
    assert raw.find(b'PK\x06\x06') > 0 and raw.find(b'PK\x06\x07') > 0, 'zip64 end records missing'
    # check at least one storage entry is not 4-byte aligned, so the reader's copy path is exercised
    z = zipfile.ZipFile(dst)
    offs = []
    for i in z.infolist():
        h = i.header_offset
        n = int.from_bytes(raw[h + 26:h + 28], 'little')
        e = int.from_bytes(raw[h + 28:h + 30], 'little')
        offs.append((i.filename, h + 30 + n + e))
    assert any(o % 4 for name, o in offs if '/data/' in name), offs


def short_storage(src, dst):
    zin = zipfile.ZipFile(src)
    with zipfile.ZipFile(dst, 'w', compression=zipfile.ZIP_STORED) as zout:
        for i in zin.infolist():
            data = zin.read(i.filename)
            if i.filename.endswith('/data/0'):
                data = data[:len(data) // 2]
            zout.writestr(i, data)


# ---------------------------------------------------------------- views and dtypes
def make_views():
    g = torch.Generator().manual_seed(5)
    base = torch.randn(5, 7, generator=g)
    big = torch.randn(10, 3, generator=g)
    shared = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    cube = torch.randn(2, 3, 4, generator=g)
    views = OrderedDict()
    views['transposed'] = base.t()                       # strides (1, 7)
    views['row_slice'] = big[2:5]                        # storage offset 6, contiguous
    views['column'] = big[:, 1]                          # offset 1, stride 3
    views['step_slice'] = base[1:5:2, ::3]               # offset 7, strides (14, 3)
    views['permuted'] = cube.permute(2, 0, 1)            # 3-d non-contiguous
    views['expanded'] = torch.randn(1, 4, generator=g).expand(3, 4)  # stride 0
    views['shared_a'] = shared[1]                        # two views of one storage
    views['shared_b'] = shared[:, 2:4]
    views['scalar'] = torch.tensor(3.25)
    views['empty'] = torch.zeros(0, 3)
    views['half'] = torch.randn(2, 3, generator=g).half()
    views['half_t'] = torch.randn(3, 2, generator=g).half().t()
    views['double'] = torch.randn(2, 2, generator=g, dtype=torch.float64)
    views['int32'] = torch.tensor([[1, -2, 3], [2 ** 31 - 1, -2 ** 31, 0]], dtype=torch.int32)
    views['int64'] = torch.tensor([2 ** 53 + 1, -5, 0], dtype=torch.int64)
    views['uint8'] = torch.tensor([0, 7, 255], dtype=torch.uint8)
    views['bool'] = torch.tensor([True, False, True])
    views['param'] = nn.Parameter(torch.randn(2, 2, generator=g))  # pickled through _rebuild_parameter
    save_both(views, 'views')
    with h5py.File(os.path.join(OUT, 'views.h5'), 'w') as f:
        e = f.create_group('expected')
        for k, t in views.items():
            t = t.detach().contiguous()
            if t.dtype == torch.float16:
                t = t.float()
            if t.dtype == torch.bool:
                t = t.to(torch.uint8)
            e.create_dataset(k, data=t.numpy())
    return views


# ---------------------------------------------------------------- hostile pickles
class Touch:
    def __reduce__(self):
        return (os.system, ('touch ' + MARKER,))


class Evaluate:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch " + MARKER + "')",))


def pickle_globals(data):
    return [arg for op, arg, pos in pickletools.genops(io.BytesIO(data)) if op.name in ('GLOBAL', 'STACK_GLOBAL')]


def assert_runs_under_python(path):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    try:
        kwargs = {'weights_only': False} if 'weights_only' in torch.load.__code__.co_varnames else {}
        torch.load(path, **kwargs)
    except Exception:
        pass
    assert os.path.exists(MARKER), path + ' did not run its payload under torch.load'
    os.remove(MARKER)


def make_hostile():
    evil = {'epoch': 1, 'model': Touch()}
    save_both(evil, 'hostile')
    z = zipfile.ZipFile(os.path.join(OUT, 'hostile.zip.pth.tar'))
    pkl = [n for n in z.namelist() if n.endswith('/data.pkl')][0]
    assert 'posix system' in pickle_globals(z.read(pkl)), pickle_globals(z.read(pkl))
    assert_runs_under_python(os.path.join(OUT, 'hostile.zip.pth.tar'))
    assert_runs_under_python(os.path.join(OUT, 'hostile.legacy.pth.tar'))
    ev = OrderedDict([('weight', torch.ones(2)), ('payload', Evaluate())])
    torch.save({'epoch': 1, 'model': ev}, os.path.join(OUT, 'hostile_eval.zip.pth.tar'))
    assert_runs_under_python(os.path.join(OUT, 'hostile_eval.zip.pth.tar'))


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    sgr = make_checkpoint('SGR', 0)
    saf = make_checkpoint('SAF', 1)
    for name, ck in (('sgr', sgr), ('saf', saf)):
        save_both(ck, name)
        write_h5(ck, os.path.join(OUT, name + '.h5'))
    # a flat state dict with prefixed keys under `model`
    flat = OrderedDict()
    for prefix, sd in zip(('img_enc.', 'txt_enc.', 'sim_enc.'), sgr['model']):
        for k, t in sd.items():
            flat[prefix + k] = t
    torch.save({'epoch': sgr['epoch'], 'model': flat, 'best_rsum': float(sgr['best_rsum']), 'opt': sgr['opt'],
                'Eiters': sgr['Eiters']}, os.path.join(OUT, 'flat.zip.pth.tar'))
    repack_zip64(os.path.join(OUT, 'sgr.zip.pth.tar'), os.path.join(OUT, 'sgr.zip64.pth.tar'), 'archive')
    torch.save({'epoch': 1, 'opt': sgr['opt']}, os.path.join(OUT, 'nomodel.zip.pth.tar'))
    short_storage(os.path.join(OUT, 'sgr.zip.pth.tar'), os.path.join(OUT, 'short_storage.zip.pth.tar'))
    make_views()
    make_hostile()
    # sanity: torch reads back what it wrote, from both containers
    for name, ck in (('sgr', sgr), ('saf', saf)):
        for kind in ('zip', 'legacy', 'zip64') if name == 'sgr' else ('zip', 'legacy'):
            back = torch.load(os.path.join(OUT, '%s.%s.pth.tar' % (name, kind)))
            for a, b in zip(back['model'], ck['model']):
                assert list(a.keys()) == list(b.keys())
                for k in a:
                    assert torch.equal(a[k], b[k]), (name, kind, k)
            assert back['best_rsum'] == ck['best_rsum'] and type(back['best_rsum']) is np.float64
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print('wrote %d files, %d bytes, torch %s, numpy %s, python %s' % (
        len(os.listdir(OUT)), total, torch.__version__, np.__version__, sys.version.split()[0]))


if __name__ == '__main__':
    main()
