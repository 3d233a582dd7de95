"""Helpers shared by the post-processing system tests: measuring and probing
audio with ffmpeg/ffprobe (meters we did not write) and making test inputs."""
import json
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRESETS = {"streaming": (-14.0, -1.0), "podcast": (-16.0, -1.0), "broadcast": (-23.0, -1.0)}


def ebur128(path):
    """Integrated loudness (LUFS) and true peak (dBTP) by ffmpeg's ebur128 filter."""
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true",
         "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    summary = out[out.rindex("Summary:"):]
    lufs = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    return lufs, peak


def probe(path):
    """(duration s, channels, sample rate, codec) by ffprobe."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "stream=codec_name,channels,sample_rate:format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True).stdout
    info = json.loads(out)
    s = info["streams"][0]
    return float(info["format"]["duration"]), s["channels"], int(s["sample_rate"]), s["codec_name"]


def synth_music(path, seconds=20):
    """A stereo 48 kHz float WAV of synthetic music: plucked chords, a kick, hats."""
    chord = r"220*pow(2\,floor(mod(t\,8)/2)/12)"
    left = (f"0.25*sin(2*PI*{chord}*t)*exp(-3*mod(t\\,0.5))+0.15*sin(2*PI*330*t)"
            r"+0.4*sin(2*PI*55*t)*exp(-12*mod(t\,0.5))+0.05*(random(0)-0.5)*exp(-30*mod(t+0.25\,0.5))")
    right = (f"0.25*sin(2*PI*{chord}*t+0.3)*exp(-3*mod(t\\,0.5))+0.15*sin(2*PI*440*t)"
             r"+0.4*sin(2*PI*55*t)*exp(-12*mod(t\,0.5))+0.05*(random(1)-0.5)*exp(-30*mod(t+0.25\,0.5))")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"aevalsrc=exprs='{left}|{right}':s=48000:d={seconds}", "-c:a", "pcm_f32le",
                    str(path)], check=True)


def scale_to(src, dst, lufs, clip=False):
    """Copies src to dst at the given integrated loudness; clip=True writes 16-bit
    integer samples, so everything over full scale is cut flat."""
    have, _ = ebur128(src)
    codec = "pcm_s16le" if clip else "pcm_f32le"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-af",
                    f"volume={lufs - have:.2f}dB", "-c:a", codec, str(dst)], check=True)


def master(src, dst, *args):
    """Runs the post chain on a file; returns (exit status, QA report)."""
    out = subprocess.run([str(ROOT / "bin/cadenza-worker"), "master", str(src), str(dst), *args],
                         capture_output=True, text=True)
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else out.stderr
