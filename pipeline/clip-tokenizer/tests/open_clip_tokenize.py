"""open_clip's SimpleTokenizer on captions given one per line, hex-encoded UTF-8.
argv = bpe_simple_vocab_16e6.txt.gz captions.hex. Prints 77 ids per caption."""
import sys

from open_clip.tokenizer import SimpleTokenizer

tok = SimpleTokenizer(bpe_path=sys.argv[1])
captions = [bytes.fromhex(line).decode("utf-8") for line in open(sys.argv[2]).read().split()]
for ids in tok(captions).tolist():
    print(" ".join(map(str, ids)))
