#!/usr/bin/python3
"""Write the small .npy fixtures of test/fixtures/npy/ with numpy itself (Debian's python3-numpy):

    /usr/bin/python3 scripts/make_npy_data.py

Each file's expected shape and values (as float32, i.e. what vsl's reader returns) go to expected.json; files
that vsl must reject are listed there under "bad" with the words the error message must contain.
"""
import json
import os

import numpy as np
from numpy.lib import format as npf

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'npy')


def save(name, arr, version=None):
    with open(os.path.join(OUT, name), 'wb') as f:
        npf.write_array(f, arr, version=version, allow_pickle=False)


def main():
    os.makedirs(OUT, exist_ok=True)
    base = (np.arange(24, dtype=np.float64).reshape(2, 3, 4) - 7.25) / 4  # exact in f2/f4/f8
    good = {
        'v1_f4.npy': (base.astype('<f4'), (1, 0)),
        'v2_f4.npy': (base.astype('<f4'), (2, 0)),
        'v3_f4.npy': (base.astype('<f4'), (3, 0)),
        'v1_f2.npy': (base.astype('<f2'), (1, 0)),
        'v1_f8.npy': (np.array([[1 / 3, -2.5e-8, 1e30], [np.pi, -0.0, 7.0]], dtype='<f8'), (1, 0)),
        'v1_i8.npy': (np.array([[-3, 0, 2 ** 40 + 1], [5, -(2 ** 35), 7]], dtype='<i8'), (1, 0)),
        'v1_i4.npy': (np.array([[-3, 0, 2 ** 30], [5, -(2 ** 31), 7]], dtype='<i4'), (1, 0)),
        'v1_1d_f4.npy': (np.array([0.5, 1.5, -2.0], dtype='<f4'), (1, 0)),
        'feat_2x36x8.npy': (np.abs(np.sin(np.arange(2 * 36 * 8, dtype=np.float32))).reshape(2, 36, 8), (1, 0)),
    }
    expected = {'good': {}, 'bad': {}}
    for name, (arr, ver) in good.items():
        save(name, arr, ver)
        expected['good'][name] = {
            'shape': list(arr.shape), 'dtype': arr.dtype.str, 'version': f'{ver[0]}.{ver[1]}',
            'values': [float(v) for v in arr.astype(np.float32).ravel()],
        }
    # Files vsl must reject, with words its message must contain.
    save('bad_be_f4.npy', base.astype('>f4'))
    expected['bad']['bad_be_f4.npy'] = ['descr', 'little-endian', "big-endian '>f4'"]
    save('bad_fortran.npy', np.asfortranarray(base.astype('<f4')))
    expected['bad']['bad_fortran.npy'] = ['fortran_order', 'False (C order)', 'True']
    save('bad_u1.npy', np.zeros((2, 3), dtype='|u1'))
    expected['bad']['bad_u1.npy'] = ['descr', "'<f4'", "'|u1'"]
    save('bad_c8.npy', np.zeros((2, 3), dtype='<c8'))
    expected['bad']['bad_c8.npy'] = ['descr', "'<c8'"]
    save('bad_structured.npy', np.zeros(3, dtype=[('a', '<f4'), ('b', '<i4')]))
    expected['bad']['bad_structured.npy'] = ['descr', 'structured dtype']
    with open(os.path.join(OUT, 'bad_magic.npy'), 'wb') as f:
        f.write(b'PK\x03\x04 this is not a numpy file')
    expected['bad']['bad_magic.npy'] = ['magic', '\\x93NUMPY', 'PK']
    raw = open(os.path.join(OUT, 'v1_f4.npy'), 'rb').read()
    with open(os.path.join(OUT, 'bad_version.npy'), 'wb') as f:
        f.write(raw[:6] + bytes([4, 0]) + raw[8:])
    expected['bad']['bad_version.npy'] = ['format version', '1.0, 2.0 or 3.0', '4.0']
    with open(os.path.join(OUT, 'bad_truncated.npy'), 'wb') as f:
        f.write(raw[:-10])
    expected['bad']['bad_truncated.npy'] = ['data', '96 bytes', '86 bytes', 'truncated']
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)
        f.write('\n')
    print('wrote', len(good) + len(expected['bad']), 'files to', OUT)


if __name__ == '__main__':
    main()
