import sys

from lora_iqa.cli.main import main

sys.exit(main())
