"""Train dam's long-context testbed model (a small Llama) for retrieval at up to 16k tokens.

usage: train_testbed.py OUTDIR CARRYDIR
env: TRAIN_SECONDS (wall budget for the optimisation loop), SMOKE=1 for a quick check,
     END_BY (unix time by which the script must be done: training stops RESERVE seconds before it,
     default 120, to leave time for the evaluation, the save and the golden).
Writes OUTDIR/model (HF layout, sharded bf16 safetensors, golden.safetensors), OUTDIR/eval.json,
OUTDIR/train_log.txt. CARRYDIR holds corpus/train.txt.xz, corpus/heldout.txt.xz,
models/smollm2-tokenizer.json and words.txt (README.md says where they come from).

Changes from the first testbed recipe (8k context, 285 s): context 16384 with rope_theta 1e6; a
task mix weighted towards the tasks it did not learn (multi-needle niah and lines); answers
weighted 6x; the evaluation scores every task exactly as `dam niah` does (passkey: first integer;
niah and multikey: the value appears in the output; lines: last integer) and on dam niah's prompt
layout (question, then the answer prefix).
"""
import os, sys, time, json, math, random, lzma, re
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(__file__))
import tasks

T_START = time.time()
OUT, CARRY = sys.argv[1], sys.argv[2]
SMOKE = os.environ.get("SMOKE") == "1"
BUDGET = float(os.environ.get("TRAIN_SECONDS", "400"))
SEQ = int(os.environ.get("SEQ", "16384"))
os.makedirs(OUT, exist_ok=True)
logf = open(os.path.join(OUT, "train_log.txt"), "a")


def log(*a):
    s = " ".join(str(x) for x in a)
    print(s, flush=True)
    logf.write(s + "\n"); logf.flush()


torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
TOKF = os.path.join(CARRY, "models", "smollm2-tokenizer.json")
tok = Tokenizer.from_file(TOKF)
EOT = tok.token_to_id("<|endoftext|>")
V = tok.get_vocab_size()
words = open(os.path.join(CARRY, "words.txt")).read().split()

raw = lzma.open(os.path.join(CARRY, "corpus", "train.txt.xz")).read().decode("utf-8")
if SMOKE:
    raw = raw[:3_000_000]
docs = [d.strip() for d in raw.split("<|endoftext|>") if len(d.strip()) > 200]
log(f"docs {len(docs)} chars {len(raw)/1e6:.1f}M  t={time.time()-T_START:.0f}s")


class Data(torch.utils.data.IterableDataset):
    def __init__(self, raw, seed):
        self.raw, self.seed = raw, seed

    def hay(self, rng, nchars):
        r = self.raw
        s = rng.randrange(0, max(1, len(r) - nchars - 1))
        s = r.find(". ", s)
        s = 0 if s < 0 else s + 2
        h = r[s:s + nchars].replace("<|endoftext|>", " ")
        return h

    def example(self, rng, L):
        """token ids and weights of one retrieval example of about L tokens (<= L)."""
        kind = rng.random()
        chat = rng.random() < 0.2
        nchars = int(L * 4.0)
        for _ in range(4):
            if kind < 0.2:
                p, a, v = tasks.passkey(self.hay(rng, nchars), rng)
            elif kind < 0.4:
                p, a, v = tasks.niah(self.hay(rng, nchars), rng, words, n_needles=1)
            elif kind < 0.65:
                p, a, v = tasks.niah(self.hay(rng, nchars), rng, words, n_needles=rng.randint(2, 6))
            else:
                p, a, v = tasks.lines(max(2, int(L / 19)), rng, words)
            if chat:
                p, a = tasks.chat(p, a)
            pi = tok.encode(p, add_special_tokens=False).ids
            ai = tok.encode(a, add_special_tokens=False).ids
            n = len(pi) + len(ai)
            if n <= L:
                return pi + ai, [1.0] * len(pi) + [6.0] * len(ai)
            L2 = L * L / n * 0.97
            nchars = int(nchars * L / n * 0.97)
            if kind >= 0.65:
                L = int(L2)
        return None, None

    def lm(self, rng, n):
        s = rng.randrange(0, len(self.ids) - n - 1)
        return self.ids[s:s + n].tolist(), [1.0] * n

    def __iter__(self):
        wi = torch.utils.data.get_worker_info()
        wid = wi.id if wi else 0
        rng = random.Random(self.seed * 1000 + wid)
        # each worker tokenises its own share of documents for the LM stream
        share = docs[wid::(wi.num_workers if wi else 1)]
        ids = []
        for e in tok.encode_batch(share[: max(1, len(share))]):
            ids.extend(e.ids); ids.append(EOT)
        self.ids = torch.tensor(ids, dtype=torch.int32)
        T = SEQ + 1
        while True:
            seq, w = [], []
            if rng.random() < 0.25:
                seq, w = self.lm(rng, T)
            else:
                while len(seq) < T:
                    rem = T - len(seq)
                    L = int(math.exp(rng.uniform(math.log(200), math.log(SEQ))))
                    L = min(L, rem - 1)
                    ids_, w_ = (None, None) if L < 160 else self.example(rng, L)
                    if ids_ is None:
                        a, b = self.lm(rng, rem)
                        seq, w = a + seq, b + w  # filler goes first
                        break
                    seq += ids_ + [EOT]
                    w += w_ + [1.0]
            yield torch.tensor(seq[:T], dtype=torch.long), torch.tensor(w[:T], dtype=torch.float32)


from transformers import LlamaConfig, LlamaForCausalLM

CFG = dict(architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=V, hidden_size=256,
           intermediate_size=768, num_hidden_layers=12, num_attention_heads=4, num_key_value_heads=2,
           head_dim=64, hidden_act="silu", max_position_embeddings=16384, rope_theta=1000000.0,
           rms_norm_eps=1e-5, tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
           bos_token_id=1, eos_token_id=2, pad_token_id=2, initializer_range=0.02, torch_dtype="bfloat16",
           use_cache=True, attention_dropout=0.0, pretraining_tp=1)
if SMOKE:
    CFG.update(num_hidden_layers=2)
cfg = LlamaConfig(**{k: v for k, v in CFG.items() if k not in ("architectures", "model_type", "torch_dtype")})
torch.manual_seed(0)
model = LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa").cuda()
nparams = sum(p.numel() for p in model.parameters())
log(f"params {nparams/1e6:.2f}M")

MB = 2
ACC = 2
dl = torch.utils.data.DataLoader(Data(raw, 1), batch_size=MB, num_workers=2 if SMOKE else 12,
                                 prefetch_factor=4, persistent_workers=True)
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
PEAK, WARM = 2e-3, 150
model.train()
it = iter(dl)
step, tokens = 0, 0
t_train = time.time()
budget = 15 if SMOKE else BUDGET
if os.environ.get("END_BY"):
    budget = min(budget, float(os.environ["END_BY"]) - time.time() - float(os.environ.get("RESERVE", "120")))
log(f"training budget {budget:.0f}s")
while True:
    el = time.time() - t_train
    if el > budget:
        break
    frac = el / budget
    lr = PEAK * min(1.0, (step + 1) / WARM) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
    for g in opt.param_groups:
        g["lr"] = lr
    tot, totw = 0.0, 0.0
    for _ in range(ACC):
        x, w = next(it)
        x, w = x.cuda(non_blocking=True), w.cuda(non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x[:, :-1]).logits
        loss_t = F.cross_entropy(logits.float().reshape(-1, V), x[:, 1:].reshape(-1), reduction="none")
        ww = w[:, 1:].reshape(-1)
        loss = (loss_t * ww).sum() / ww.sum() / ACC
        loss.backward()
        tot += loss.item()
        tokens += x.numel()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step(); opt.zero_grad(set_to_none=True)
    step += 1
    if step % 25 == 0 or SMOKE:
        log(f"step {step} loss {tot:.4f} lr {lr:.2e} tok {tokens/1e6:.1f}M "
            f"tok/s {tokens/(time.time()-t_train):.0f} t={time.time()-T_START:.0f}s")
log(f"trained steps {step} tokens {tokens/1e6:.1f}M in {time.time()-t_train:.0f}s")

# ------------------------------------------------------------------ save (HF hub layout)
from safetensors.torch import save_file
mdir = os.path.join(OUT, "model")
os.makedirs(mdir, exist_ok=True)
sd = {k: v.detach().to(torch.bfloat16).contiguous().cpu() for k, v in model.state_dict().items()
      if k != "lm_head.weight" and "rotary" not in k}
shards, cur, cur_b = [], {}, 0
for k in sorted(sd):
    b = sd[k].numel() * 2
    if cur and cur_b + b > 15_000_000:
        shards.append(cur); cur, cur_b = {}, 0
    cur[k] = sd[k]; cur_b += b
shards.append(cur)
wm, total = {}, 0
for i, sh in enumerate(shards):
    fn = f"model-{i+1:05d}-of-{len(shards):05d}.safetensors"
    save_file(sh, os.path.join(mdir, fn), metadata={"format": "pt"})
    for k, v in sh.items():
        wm[k] = fn; total += v.numel() * 2
json.dump({"metadata": {"total_size": total}, "weight_map": wm}, open(os.path.join(mdir, "model.safetensors.index.json"), "w"), indent=2)
json.dump(CFG, open(os.path.join(mdir, "config.json"), "w"), indent=2)
json.dump({"bos_token_id": 1, "eos_token_id": [2, 0], "pad_token_id": 2, "do_sample": False, "max_new_tokens": 64},
          open(os.path.join(mdir, "generation_config.json"), "w"), indent=2)
import shutil
shutil.copy(TOKF, os.path.join(mdir, "tokenizer.json"))
chat_template = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
                 "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
json.dump({"add_prefix_space": False, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
           "unk_token": "<|endoftext|>", "model_max_length": 16384, "tokenizer_class": "GPT2Tokenizer",
           "clean_up_tokenization_spaces": False, "chat_template": chat_template},
          open(os.path.join(mdir, "tokenizer_config.json"), "w"), indent=2)
json.dump({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>"},
          open(os.path.join(mdir, "special_tokens_map.json"), "w"), indent=2)
log(f"saved {len(shards)} shards, {total/1e6:.1f} MB")

# ------------------------------------------------------------------ quick eval with full attention
model.eval()
held = lzma.open(os.path.join(CARRY, "corpus", "heldout.txt.xz")).read().decode("utf-8").replace("<|endoftext|>", " ")
erng = random.Random(12345)


def gen(prompt, n=16):
    ids = torch.tensor([tok.encode(prompt, add_special_tokens=False).ids], device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        out = model.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=2)
    return tok.decode(out[0, ids.shape[1]:].tolist()), ids.shape[1]


def score(task, out, v):
    """dam niah's rules (src/eval/niah_score.c)."""
    nums = re.findall(r"\d+", out)
    if task == "passkey":
        return bool(nums) and int(nums[0]) == int(v)
    if task == "lines":
        return bool(nums) and int(nums[-1]) == int(v)
    return v in out


res = {"params": nparams, "steps": step, "tokens": tokens, "cells": []}
lens = [512] if SMOKE else [1024, 2048, 4096, 8192, 16000]
nsamp = 1 if SMOKE else 10
for L in lens:
    for task in ("passkey", "niah", "multikey", "lines"):
        ok = 0; ntoks = []
        for s in range(nsamp):
            depth = s / (nsamp - 1) if nsamp > 1 else 0.5
            st = erng.randrange(0, len(held) - L * 5)
            hay = held[st:st + int(L * 3.6)]
            if task == "passkey":
                p, a, v = tasks.passkey(hay, erng, depth)
            elif task == "niah":
                p, a, v = tasks.niah(hay, erng, words, 1, depth)
            elif task == "multikey":
                p, a, v = tasks.niah(hay, erng, words, 4, depth)
            else:
                p, a, v = tasks.lines(max(2, int(L / 19)), erng, words, depth)
            if task in ("niah", "multikey"):       # dam niah's layout: the answer prefix follows
                p = p + a[: a.rindex(" is ") + 3]
            outp, n = gen(p)
            ntoks.append(n)
            ok += int(score(task, outp, v))
        res["cells"].append({"len": L, "task": task, "acc": ok / nsamp, "avg_prompt_tokens": sum(ntoks) / len(ntoks)})
        log(f"eval L={L} {task}: {ok}/{nsamp}  avg tokens {sum(ntoks)/len(ntoks):.0f}")
# held-out perplexity
ids = torch.tensor(tok.encode(held[:400000]).ids[: 4 * 8193]).view(-1, 8193)[:4].cuda()
with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
    lg = model(input_ids=ids[:, :-1]).logits.float()
ppl = math.exp(F.cross_entropy(lg.reshape(-1, V), ids[:, 1:].reshape(-1)).item())
res["heldout_ppl_8k"] = ppl
log(f"heldout ppl (8k windows) {ppl:.2f}  total t={time.time()-T_START:.0f}s")
json.dump(res, open(os.path.join(OUT, "eval.json"), "w"), indent=1)

# golden logits from the saved (bf16-rounded) weights, computed in float32 on the CPU
try:
    from safetensors.torch import save_file as _save
    m32 = LlamaForCausalLM.from_pretrained(mdir, dtype=torch.float32, attn_implementation="eager").eval()
    gids = torch.tensor([tok.encode(held[500000:520000]).ids[:512]])
    with torch.no_grad():
        lg = m32(gids).logits[0].float()
    _save({"input_ids": gids[0].to(torch.int32).contiguous(), "logits_last32": lg[-32:].contiguous(),
           "argmax": lg.argmax(-1).to(torch.int32).contiguous()}, os.path.join(mdir, "golden.safetensors"))
    log("golden saved")
except Exception as e:
    log("golden failed", repr(e))
os._exit(0)
