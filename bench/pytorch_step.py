"""What an ML engineer would run instead of octoclip: the same training step in PyTorch, timed.

transformers' CLIPModel with PEFT LoRA r=2 (alpha 1, dropout 0.25, as CLIP-LoRA) on q, k and v of
every layer of both towers, batch 32, AdamW (2e-4, weight decay 1e-2), cross-entropy over
logit_scale * cos(image, class prompt), the text tower over every class each step (its adapters train).
Timed in fp32 and under fp16 autocast (the adapters and AdamW stay fp32), median of the steps after
the warm-up, synchronised with the GPU; prints one JSON object. Random weights with the checkpoint's
configuration unless --pretrained (the step's cost does not depend on the values).

    python bench/pytorch_step.py --model openai/clip-vit-base-patch32 --classes 10 --steps 20

Needs torch, transformers and peft (not the project's dependencies: a GPU machine's Python).
"""

import argparse
import json
import statistics
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import CLIPConfig, CLIPModel

PROMPT_TOKENS = 8  # 'a photo of a {}.' with a one-token class name, as the octoclip bench's planner assumes


def build(model_name: str, pretrained: bool, device: str) -> torch.nn.Module:
    model = CLIPModel.from_pretrained(model_name) if pretrained else CLIPModel(CLIPConfig.from_pretrained(model_name))
    lora = LoraConfig(r=2, lora_alpha=1, lora_dropout=0.25, target_modules=["q_proj", "k_proj", "v_proj"], bias="none")
    return get_peft_model(model, lora).to(device)


def time_steps(model, classes: int, batch: int, steps: int, warmup: int, autocast: bool, device: str) -> list[float]:
    config = model.base_model.model.config
    size = config.vision_config.image_size
    pixels = torch.randn(batch, 3, size, size, device=device)
    labels = torch.arange(batch, device=device) % classes
    ids = torch.randint(0, config.text_config.vocab_size - 2, (classes, PROMPT_TOKENS), device=device)
    # The pooled token, end-of-text: old configurations (eos_token_id 2) find it as the largest id.
    text = config.text_config
    ids[:, -1] = text.vocab_size - 1 if text.eos_token_id == 2 else text.eos_token_id
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4, weight_decay=1e-2)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast)  # what fp16 training runs with
    model.train()
    times = []
    for step in range(warmup + steps):
        torch.cuda.synchronize()
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=autocast):
            out = model(input_ids=ids, pixel_values=pixels)
            loss = torch.nn.functional.cross_entropy(out.logits_per_image.float(), labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        torch.cuda.synchronize()
        if step >= warmup:
            times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="openai/clip-vit-base-patch32")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--pretrained", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("pytorch_step.py times a GPU step: torch finds no CUDA device here")
    device = "cuda"
    model = build(args.model, args.pretrained, device)
    rows = []
    for precision, autocast in (("fp32", False), ("fp16 autocast", True)):
        times = time_steps(model, args.classes, args.batch, args.steps, args.warmup, autocast, device)
        median = statistics.median(times)
        rows.append({
            "precision": precision, "median_ms": median, "images_per_second": 1000 * args.batch / median,
            # CLIP-LoRA's 500 x shots steps
            "seconds_to_adapter": {shots: 500 * shots * median / 1000 for shots in (1, 4, 16)},
            "steps": len(times),
        })
    print(json.dumps({
        "model": args.model, "classes": args.classes, "batch": args.batch, "device": torch.cuda.get_device_name(),
        "torch": torch.__version__, "adapter": "PEFT LoRA r=2 on q, k, v of both towers, AdamW", "rows": rows,
    }, indent=2))


if __name__ == "__main__":
    main()
