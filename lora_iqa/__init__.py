"""lora_iqa: parameter-efficient fine-tuning of vision-language image-quality captioners."""

__version__ = "0.1.0"
