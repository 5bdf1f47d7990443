#!/usr/bin/python3
"""Write test/fixtures/tokenizer/tfidf_cases.json: scikit-learn's TF-IDF (CountVectorizer() + TfidfTransformer(),
the defaults VSL's data.py uses) of a corpus of tricky captions, to check vsl's sparse TF-IDF term by term:

    /usr/bin/python3 scripts/make_tfidf_data.py

The corpus is the hand-picked captions of cases.json (written by make_tokenizer_fixture.py) plus a few lines
with Unicode word characters, digits, underscores and astral-plane letters. Captions go in as UTF-8 bytes, as
the reference passes its raw caption lines.
"""
import json
import os

import sklearn
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

FIX = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'tokenizer')

EXTRA = [
    'Σίσυφος ΟΔΟΣ and the ΟΔΟΣ sign',
    'x_y __init__ 3 45 1,000 3.5 2nd',
    'ｆｕｌｌｗｉｄｔｈ letters and 𝐛𝐨𝐥𝐝 ones, 𐐀𐐁 deseret',
    'straße STRASSE İstanbul ǅemal',
    'naïve café CAFÉ cafe\u0301 combining',
    '日本語 テキスト 中文 한국어',
    'Ⅻ roman ½ half ² squared ٣ arabic-indic',
    '',
    '!!! ...',
]


def main():
    with open(os.path.join(FIX, 'cases.json'), encoding='utf-8') as f:
        corpus = [c['raw'] for c in json.load(f)['cases']] + EXTRA
    counts = CountVectorizer().fit(corpus_bytes := [c.encode('utf-8') for c in corpus])
    x = TfidfTransformer().fit_transform(counts.transform(corpus_bytes)).tocsr()
    x.sort_indices()
    terms = counts.get_feature_names_out().tolist()
    rows = []
    for i in range(x.shape[0]):
        a, b = x.indptr[i], x.indptr[i + 1]
        rows.append({'cols': x.indices[a:b].tolist(), 'vals': [float(v) for v in x.data[a:b]]})
    out = {'generator': 'scripts/make_tfidf_data.py', 'sklearn': sklearn.__version__, 'corpus': corpus,
           'terms': terms, 'rows': rows}
    with open(os.path.join(FIX, 'tfidf_cases.json'), 'w', encoding='utf-8') as f:
        json.dump(out, f, ensure_ascii=False)
        f.write('\n')
    print(f'wrote {len(corpus)} captions, {len(terms)} terms to {FIX}/tfidf_cases.json')


if __name__ == '__main__':
    main()
