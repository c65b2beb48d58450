"""Loads a model folder and LoRA written by anchor-train into diffusers and runs the UNet.

    python lora_parity.py DIR

DIR holds a diffusers folder (`unet/`, `vae/`, `text_encoder/`, `tokenizer/`, `scheduler/`,
`model_index.json`) written by `anchor_train::folder`, `lora/pytorch_lora_weights.safetensors`
written by `anchor_train::stages::save_lora_file`, and `inputs.safetensors` (sample, timesteps,
context). `StableDiffusionPipeline.from_pretrained` must load the folder and
`pipe.load_lora_weights` the LoRA with no missing or unexpected keys; the UNet output goes to
DIR/diffusers_out.safetensors and a key report to DIR/report.json.
"""

import json
import logging
import sys
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file, save_file

torch.set_grad_enabled(False)


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def main():
    d = Path(sys.argv[1])
    cap = Capture()
    logging.getLogger("diffusers").addHandler(cap)
    logging.getLogger("peft").addHandler(cap)
    pipe = StableDiffusionPipeline.from_pretrained(str(d), safety_checker=None, requires_safety_checker=False)
    pipe.load_lora_weights(str(d / "lora"), weight_name="pytorch_lora_weights.safetensors", adapter_name="anchor")
    ours = load_file(str(d / "lora" / "pytorch_lora_weights.safetensors"))
    file_keys = sorted(k[len("unet."):] for k in ours)
    loaded = get_peft_model_state_dict(pipe.unet, adapter_name="anchor")
    loaded_keys = sorted(loaded)
    mismatched = [k for k in file_keys if k in loaded and not torch.equal(loaded[k], ours["unet." + k])]
    inp = load_file(str(d / "inputs.safetensors"))
    out = pipe.unet(inp["sample"], inp["timesteps"], encoder_hidden_states=inp["context"]).sample
    save_file({"out": out.contiguous()}, str(d / "diffusers_out.safetensors"))
    report = {
        "missing": sorted(set(file_keys) - set(loaded_keys)),
        "unexpected": sorted(set(loaded_keys) - set(file_keys)),
        "mismatched_values": mismatched,
        "n_keys": len(file_keys),
        "key_warnings": [m for m in cap.messages if "unexpected key" in m.lower() or "missing key" in m.lower()],
        "other_warnings": [m for m in cap.messages if "unexpected key" not in m.lower() and "missing key" not in m.lower()],
    }
    (d / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
