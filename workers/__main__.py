import sys

from workers.main import run

run(ocr="--ocr" in sys.argv[1:])
