"""Tiny random models of the newer families, built in code and saved as diffusers folders (offline).

Sizes follow diffusers' own pipeline tests; the VAE has four levels (1/8 latents, as the real models) so that
sizes behave as they do at full scale. Tokenizers are built in code too: a byte-level CLIP vocabulary and a
word-level T5 one (``tokenizer.json``), so nothing comes from the hub.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from underpaint.server.engine.demo_model import bytes_to_unicode, write_tokenizer

WIDTH = 32  # text embedding width of both encoders (joint_attention_dim, pooled_projection_dim)
LATENT_CHANNELS = 16  # as Flux.1's VAE: the transformer takes 64 packed channels, Fill 384, as the real ones
FILL_IN = 2 * LATENT_CHANNELS * 4 + 64 * 4  # packed latents + packed masked-image latents + packed 8x8 mask
T5_WORDS = ["<pad>", "</s>", "<unk>", "a", "red", "boat", "on", "the", "sea", "cat", "painting"]
T5_VOCAB = len(T5_WORDS) + 1  # and the bare word boundary


def _t5_tokenizer(folder: Path):
    """A T5 (Unigram, SentencePiece-style) tokenizer over a few words, saved as tokenizer.json and reloaded."""
    from transformers import T5TokenizerFast

    vocab = [(w, 0.0) for w in T5_WORDS[:3]] + [("\u2581" + w, -1.0) for w in T5_WORDS[3:]] + [("\u2581", -2.0)]
    T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=512).save_pretrained(str(folder))
    return T5TokenizerFast.from_pretrained(str(folder))


def build_tiny_flux(folder: Path, *, fill: bool = False, seed: int = 7) -> Path:
    """A Flux.1 (dev, with a guidance input) or Flux.1 Fill pipeline with random weights, saved at ``folder``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxFillPipeline,
        FluxImg2ImgPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel

    scratch = folder.parent / f".{folder.name}-tokenizers"
    clip_vocab = write_tokenizer(scratch / "clip")
    clip_tok = CLIPTokenizer.from_pretrained(str(scratch / "clip"), model_max_length=77)
    t5_tok = _t5_tokenizer(scratch / "t5")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clip = CLIPTextModel(CLIPTextConfig(
            vocab_size=clip_vocab, hidden_size=WIDTH, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=77, projection_dim=WIDTH, bos_token_id=clip_vocab - 2, eos_token_id=clip_vocab - 1,
            pad_token_id=clip_vocab - 1,
        ))
        torch.manual_seed(seed + 1)
        t5 = T5EncoderModel(T5Config(vocab_size=T5_VOCAB, d_model=WIDTH, d_kv=8, d_ff=37, num_layers=2,
                                     num_heads=4, relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                                     decoder_start_token_id=0))
        torch.manual_seed(seed + 2)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(16, 16, 16, 16), layers_per_block=1,
            latent_channels=LATENT_CHANNELS, norm_num_groups=8, use_quant_conv=False, use_post_quant_conv=False,
            shift_factor=0.1159, scaling_factor=0.3611,
        )
        torch.manual_seed(seed + 3)  # last: dev and Fill share text encoders and VAE, as the real ones do
        transformer = FluxTransformer2DModel(
            patch_size=1, in_channels=FILL_IN if fill else LATENT_CHANNELS * 4,
            out_channels=LATENT_CHANNELS * 4 if fill else None, num_layers=1, num_single_layers=1,
            attention_head_dim=16, num_attention_heads=2, joint_attention_dim=WIDTH, pooled_projection_dim=WIDTH,
            guidance_embeds=True, axes_dims_rope=[4, 4, 8],
        )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    cls = FluxFillPipeline if fill else FluxImg2ImgPipeline
    pipe = cls(scheduler=scheduler, vae=vae.eval(), text_encoder=clip.eval(), tokenizer=clip_tok,
               text_encoder_2=t5.eval(), tokenizer_2=t5_tok, transformer=transformer.eval())
    pipe.save_pretrained(str(folder), safe_serialization=True)
    shutil.rmtree(scratch)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == cls.__name__
    return folder


def write_comfy_layout(pipeline_dir: Path, comfy: Path, name: str, ldm_vae: Callable[[dict], dict]) -> Path:
    """Save a tiny Flux diffusers folder as ComfyUI keeps models: the transformer in models/diffusion_models
    (diffusers key names: diffusers' converter of original Flux keys assumes the full 3072 width), CLIP-L and
    T5 in models/text_encoders, the VAE in original (LDM) key names in models/vae, tokenizers in comfy/.
    The tiny configs go in a ``<name>.config`` folder beside the transformer. Returns the models folder."""
    from safetensors.torch import load_file, save_file

    models = comfy / "models"
    transformer = models / "diffusion_models" / f"{name}.safetensors"
    transformer.parent.mkdir(parents=True, exist_ok=True)
    save_file(load_file(str(pipeline_dir / "transformer" / "diffusion_pytorch_model.safetensors")), str(transformer))
    override = transformer.with_name(f"{name}.config")
    for component in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        (override / component).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pipeline_dir / component / "config.json", override / component / "config.json")
    encoders = models / "text_encoders"
    encoders.mkdir(parents=True, exist_ok=True)
    if not (encoders / "clip_l.safetensors").exists():
        from transformers import CLIPTextModel, T5EncoderModel

        clip = CLIPTextModel.from_pretrained(str(pipeline_dir / "text_encoder")).state_dict()
        clip = {k if k.startswith("text_model.") else f"text_model.{k}": v.contiguous() for k, v in clip.items()}
        save_file(clip, str(encoders / "clip_l.safetensors"))  # as OpenAI's CLIP-L in ComfyUI: text_model.*
        t5 = T5EncoderModel.from_pretrained(str(pipeline_dir / "text_encoder_2")).state_dict()
        t5 = {k: v.contiguous() for k, v in t5.items() if k != "encoder.embed_tokens.weight"}  # shared.weight
        save_file(t5, str(encoders / "t5xxl_fp16.safetensors"))
        (models / "vae").mkdir(parents=True, exist_ok=True)
        vae = ldm_vae(load_file(str(pipeline_dir / "vae" / "diffusion_pytorch_model.safetensors")))
        save_file(vae, str(models / "vae" / "ae.safetensors"))
        shutil.copytree(pipeline_dir / "tokenizer", comfy / "comfy" / "sd1_tokenizer", dirs_exist_ok=True)
        shutil.copytree(pipeline_dir / "tokenizer_2", comfy / "comfy" / "t5_tokenizer", dirs_exist_ok=True)
    return models


def write_gguf_transformer(pipeline_dir: Path, dest: Path) -> Path:
    """The pipeline's transformer as a GGUF file written with the ``gguf`` package: 2-D weights whose rows
    split into 32-value blocks as Q8_0, everything else F32 (as city96's Flux GGUFs keep norms and biases)."""
    import gguf
    from safetensors.torch import load_file

    dest.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(dest), arch="flux")
    for name, tensor in load_file(str(pipeline_dir / "transformer" / "diffusion_pytorch_model.safetensors")).items():
        array = tensor.float().numpy()
        if array.ndim == 2 and array.shape[1] % 32 == 0:
            qtype = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(array, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dest


def build_tiny_sd3(folder: Path, *, seed: int = 11) -> Path:
    """An SD 3.5-layout img2img pipeline with random weights (two CLIPs with projection, T5, an MMDiT with 2x2
    patches on 16 latent channels), saved at ``folder``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Img2ImgPipeline,
    )
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer, T5Config, T5EncoderModel

    scratch = folder.parent / f".{folder.name}-tokenizers"
    vocab = write_tokenizer(scratch / "clip")
    clip_tok = CLIPTokenizer.from_pretrained(str(scratch / "clip"), model_max_length=77)
    t5_tok = _t5_tokenizer(scratch / "t5")

    def clip():
        return CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=vocab, hidden_size=WIDTH, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=77, projection_dim=WIDTH, bos_token_id=vocab - 2, eos_token_id=vocab - 1,
            pad_token_id=vocab - 1)).eval()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clip_l, clip_g = clip(), clip()
        t5 = T5EncoderModel(T5Config(vocab_size=T5_VOCAB, d_model=2 * WIDTH, d_kv=8, d_ff=37, num_layers=2,
                                     num_heads=4, relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                                     decoder_start_token_id=0)).eval()
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(16, 16, 16, 16), layers_per_block=1,
            latent_channels=LATENT_CHANNELS, norm_num_groups=8, use_quant_conv=False, use_post_quant_conv=False,
            shift_factor=0.0609, scaling_factor=1.5305,
        ).eval()
        transformer = SD3Transformer2DModel(
            sample_size=32, patch_size=2, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS, num_layers=1,
            attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=2 * WIDTH,
            pooled_projection_dim=2 * WIDTH,
        ).eval()
    pipe = StableDiffusion3Img2ImgPipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
        text_encoder=clip_l, tokenizer=clip_tok, text_encoder_2=clip_g, tokenizer_2=clip_tok,
        text_encoder_3=t5, tokenizer_3=t5_tok,
    )
    pipe.save_pretrained(str(folder), safe_serialization=True)
    shutil.rmtree(scratch)
    return folder


def build_tiny_chroma(folder: Path, *, seed: int = 13) -> Path:
    """A Chroma img2img pipeline with random weights (T5 only; a Flux-style transformer), saved at ``folder``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        ChromaImg2ImgPipeline,
        ChromaTransformer2DModel,
        FlowMatchEulerDiscreteScheduler,
    )
    from transformers import T5Config, T5EncoderModel

    scratch = folder.parent / f".{folder.name}-tokenizers"
    t5_tok = _t5_tokenizer(scratch / "t5")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        t5 = T5EncoderModel(T5Config(vocab_size=T5_VOCAB, d_model=WIDTH, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                     relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1,
                                     decoder_start_token_id=0)).eval()
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(16, 16, 16, 16), layers_per_block=1,
            latent_channels=LATENT_CHANNELS, norm_num_groups=8, use_quant_conv=False, use_post_quant_conv=False,
            shift_factor=0.1159, scaling_factor=0.3611,
        ).eval()
        transformer = ChromaTransformer2DModel(
            patch_size=1, in_channels=LATENT_CHANNELS * 4, num_layers=1, num_single_layers=1, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=WIDTH, axes_dims_rope=(4, 4, 8), approximator_num_channels=16,
            approximator_hidden_dim=32, approximator_layers=1,
        ).eval()
    pipe = ChromaImg2ImgPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae, text_encoder=t5,
                                 tokenizer=t5_tok, transformer=transformer)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    shutil.rmtree(scratch)
    return folder


def _qwen_tokenizer(folder: Path):
    """A byte-level BPE tokenizer (no merges) with a chat template, as Qwen's; saved and reloaded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate([*symbols, "<|endoftext|>", "<|im_start|>", "<|im_end|>"])}
    tok = Tokenizer(models.BPE(vocab, [], unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|im_end|>",
                                   additional_special_tokens=["<|im_start|>"], model_max_length=512,
                                   chat_template=template)
    fast.save_pretrained(str(folder))
    return PreTrainedTokenizerFast.from_pretrained(str(folder)), len(vocab)


def build_tiny_z_image(folder: Path, *, seed: int = 17) -> Path:
    """A Z-Image img2img pipeline with random weights (a tiny Qwen3 text encoder, the single-stream DiT with
    2x2 patches on 16 latent channels), saved at ``folder``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        ZImageImg2ImgPipeline,
        ZImageTransformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3Model

    scratch = folder.parent / f".{folder.name}-tokenizers"
    tokenizer, vocab = _qwen_tokenizer(scratch / "qwen")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text = Qwen3Model(Qwen3Config(vocab_size=vocab, hidden_size=16, intermediate_size=16, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, head_dim=8,
                                      max_position_embeddings=1024)).eval()
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(16, 16, 16, 16), layers_per_block=1,
            latent_channels=LATENT_CHANNELS, norm_num_groups=8, use_quant_conv=False, use_post_quant_conv=False,
            shift_factor=0.1159, scaling_factor=0.3611,
        ).eval()
        transformer = ZImageTransformer2DModel(
            all_patch_size=(2,), all_f_patch_size=(1,), in_channels=LATENT_CHANNELS, dim=32, n_layers=2,
            n_refiner_layers=1, n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True, cap_feat_dim=16,
            rope_theta=256.0, t_scale=1000.0, axes_dims=[8, 4, 4], axes_lens=[256, 32, 32],
        ).eval()
    pipe = ZImageImg2ImgPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae, text_encoder=text,
                                 tokenizer=tokenizer, transformer=transformer)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    shutil.rmtree(scratch)
    return folder


def build_tiny_qwen_image(folder: Path, *, seed: int = 19) -> Path:
    """A Qwen-Image img2img pipeline with random weights (a tiny Qwen2.5-VL text encoder, the 3-D causal VAE,
    an MMDiT on 16 packed latent channels), saved at ``folder``."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageImg2ImgPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    scratch = folder.parent / f".{folder.name}-tokenizers"
    tokenizer, vocab = _qwen_tokenizer(scratch / "qwen")
    special = {"bos_token_id": vocab - 3, "eos_token_id": vocab - 1, "pad_token_id": vocab - 3}
    text_config = {"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                   "num_key_value_heads": 2, "rope_theta": 1000000.0, "vocab_size": vocab, **special,
                   "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}}
    ids = {name: vocab + i for i, name in enumerate(("vision_start_token_id", "vision_end_token_id",
                                                     "vision_token_id", "image_token_id", "video_token_id"))}
    config = Qwen2_5_VLConfig(text_config=text_config, hidden_size=16, vocab_size=vocab, **ids, **special,
                              vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2,
                                             "out_hidden_size": 16})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text = Qwen2_5_VLForConditionalGeneration(config).eval()
        vae = AutoencoderKLQwenImage(base_dim=16, z_dim=LATENT_CHANNELS, dim_mult=[1, 2, 4, 4], num_res_blocks=1,
                                     temperal_downsample=[False, True, True], latents_mean=[0.0] * LATENT_CHANNELS,
                                     latents_std=[1.0] * LATENT_CHANNELS).eval()
        transformer = QwenImageTransformer2DModel(
            patch_size=2, in_channels=LATENT_CHANNELS * 4, out_channels=LATENT_CHANNELS, num_layers=2,
            attention_head_dim=16, num_attention_heads=3, joint_attention_dim=16, guidance_embeds=False,
            axes_dims_rope=(8, 4, 4),
        ).eval()
    pipe = QwenImageImg2ImgPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae, text_encoder=text,
                                    tokenizer=tokenizer, transformer=transformer)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    shutil.rmtree(scratch)
    return folder
