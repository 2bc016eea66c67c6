"""What the layout scans share: their own checks first, then one pass over
the tree's C files, each problem printed, exit 1 when there is any."""
import glob
import os
import sys
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def run(self_check, folders, problems_in, summary):
    """self_check: a unittest.TestCase of the scan's own examples, run
    first; problems_in(relative_path, text) -> [problem]; summary: printed
    with the number of files when nothing was found."""
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(self_check)
    if not unittest.TextTestRunner(verbosity=1).run(suite).wasSuccessful():
        sys.exit("the scan's own checks failed")
    problems, files = [], 0
    for folder in folders:
        for path in sorted(glob.glob(os.path.join(REPO, folder, "**", "*.[ch]"), recursive=True)):
            with open(path, encoding="utf-8") as f:
                problems += problems_in(os.path.relpath(path, REPO), f.read())
            files += 1
    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print(summary % files)
