"""Loads a LoRA file written by anchor-sd into diffusers and runs the tiny UNet with it.

    python lora_reference.py DIR

DIR is the output of make_reference.py plus `lora/pytorch_lora_weights.safetensors` written
by the Rust test. diffusers' own loader (through PEFT) must accept our key names and our
rank/alpha metadata; the output goes to DIR/lora_reference.safetensors.
"""

import sys
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file, save_file

torch.set_grad_enabled(False)


def main():
    out = Path(sys.argv[1])
    unet = UNet2DConditionModel.from_pretrained(out / "unet").eval()
    # The call diffusers' `load_lora_weights` makes for the UNet, from a folder + file name
    # (that path reads the adapter metadata: our rank and alpha).
    unet.load_lora_adapter(
        str(out / "lora"),
        weight_name="pytorch_lora_weights.safetensors",
        prefix="unet",
        adapter_name="safe",
    )
    scaling = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.scaling["safe"]
    n_lora = sum(1 for name, _ in unet.named_parameters() if "lora_" in name)
    ref = load_file(str(out / "reference.safetensors"))
    pred = unet(ref["unet.sample"], ref["unet.timesteps"], encoder_hidden_states=ref["unet.context"]).sample
    save_file({"out": pred.contiguous(), "n_lora": torch.tensor([n_lora]), "scaling": torch.tensor([scaling])}, str(out / "lora_reference.safetensors"))


if __name__ == "__main__":
    main()
