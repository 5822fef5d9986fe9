/* lipgan train: train a GAN from a YAML config (lipgan/train.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "lipgan/backend_cpu.h"
#include "lipgan/config.h"
#include "lipgan/dist.h"
#include "lipgan/train.h"

static volatile sig_atomic_t g_stop = 0;

/* Only sets the flag; the loop checkpoints and exits between steps. A
 * second signal kills the process (SA_RESETHAND restored the default). */
static void on_signal(int sig) { g_stop = sig; }

static void usage(FILE *f) {
    fprintf(f,
            "usage: lipgan train CONFIG.yaml [--set key=value ...] [--out DIR] [--resume]\n"
            "       lipgan train CONFIG.yaml [--set ...] --print-config\n"
            "       lipgan train --help-config\n"
            "\n"
            "Trains G and D as CONFIG says. Every key can be overridden with --set\n"
            "(e.g. --set train.steps=2000 --set model.g.width=64); --help-config lists them.\n"
            "\n"
            "  --set key=value  override a config key (repeatable; also --set=key=value); a bad\n"
            "                   key or value is a config error (exit 4), as in the file\n"
            "  --out DIR        run directory (default runs/<config name>; also --out=DIR):\n"
            "                   ckpt_*.safetensors, metrics.jsonl, samples.png, samples/step_*.png,\n"
            "                   config.yaml, spectra.bin (log.spectra_every), events.out.tfevents.*\n"
            "                   (TensorBoard, log.tensorboard); `lipgan report DIR` turns them into\n"
            "                   one HTML page. A file, or a place that cannot be created or written,\n"
            "                   is exit 2, before anything else\n"
            "  --resume         continue from the newest checkpoint in DIR (bit-identical to an\n"
            "                   uninterrupted run with the same thread count; a checkpoint from an\n"
            "                   older lipgan resumes with a warning: the spectral monitor restarts cold)\n"
            "  --print-config   print the effective config (YAML) and exit\n"
            "  --help-config    print every key with its default, range and help, and exit\n"
            "  -q, --quiet      no progress lines (default: a line every log.every steps)\n"
            "  -h, --help       this help\n"
            "\n"
            "Monitoring: every log.spectra_every steps the singular values of every layer of D and\n"
            "G go to spectra.bin and a summary (collapse statistic, Lipschitz bound estimates) to the\n"
            "progress line and metrics.jsonl, with a WARNING on spectral collapse; every eval.every\n"
            "steps eval.n samples are evaluated (eval.metrics: toy for 2-D toys, cfid,classes for\n"
            "Fashion-MNIST, is,fid,kid with eval.inception) and appended to metrics.jsonl.\n"
            "\n"
            "Several processes (data-parallel): mpirun -np P lipgan train CONFIG --set dist=mpi;\n"
            "each process computes on 1/P of every batch (train.batch_d and batch_g must divide by P),\n"
            "the gradients are averaged, batch norm uses the whole batch's statistics\n"
            "(dist_sync_bn), and rank 0 writes the run directory (lipgan/dist.h). With device: cuda,\n"
            "process i of a machine runs on GPU cuda.device + i (modulo the GPUs CUDA_VISIBLE_DEVICES\n"
            "shows).\n"
            "\n"
            "Progress line (every log.every steps): step, losses of D and G (gp: the gradient penalty\n"
            "term), D(x) and D(G(z)) (mean D output on real and fake data), then, when D has SN or\n"
            "Toeplitz, \"D raw sigma min/mean/max a/b/c\" (\"D raw op-norm\" under Toeplitz): over D's\n"
            "normalized layers, the power-iteration estimate of each raw weight's norm, the divisor\n"
            "its normalization uses (metrics.jsonl: sigma_d_min/mean/max):\n"
            "  SN        the spectral norm of the reshaped weight matrix; the layer as used has 1\n"
            "  SR-GAN    the same, about 1 just after each SR step, which rescales the raw weights\n"
            "            (lipschitz.d.sr_every, sr_schedule)\n"
            "  Toeplitz  the convolution's true operator norm (linear layers: the matrix norm); a\n"
            "            conv as used has lipschitz.d.toeplitz_k, a linear layer 1 (plain SN)\n"
            "Large or growing raw norms are what D would have without the constraint, not D's\n"
            "Lipschitz constant (the spectral monitor, log.spectra_every, estimates bounds on that). Then the\n"
            "learning rate of G, it/s and the ETA; under the critic schedule (train.n_dis_boost)\n"
            "\"n_dis N\" says how many D updates the step ran (metrics.jsonl: d_updates, the D\n"
            "updates applied so far). With gradient clamping (lipschitz.*.clamp_ratio),\n"
            "\"D grad: sigma0/sigma1 max\": the largest ratio of a layer's gradient at the network's\n"
            "last update, before clamping, and how many layers were clamped (metrics.jsonl:\n"
            "gclamp_D_ratio_max, gclamp_D_clamped; G likewise; a layer with one row or column has\n"
            "no sigma1 and is never clamped).\n"
            "\n"
            "The run directory is locked (DIR/.lock) while a run writes it: a second run into it is\n"
            "refused, as is a fresh run into a DIR holding checkpoints or a metrics.jsonl (exit 2);\n"
            "--resume of a DIR that does not exist creates nothing (exit 3). On --resume, CONFIG and\n"
            "--set make the config (the run's config.yaml is not read); the keys that differ from the\n"
            "checkpoint's are named in a warning.\n"
            "\n"
            "SIGINT/SIGTERM write a checkpoint and exit (code 128+signal); a second one kills. A signal\n"
            "the process started with ignored stays ignored (a background job `lipgan train ... &` of a\n"
            "non-interactive shell ignores SIGINT: stop it with SIGTERM).\n"
            "Exit codes: 0 done, 1 runtime error, 2 usage (also an --out that is a file or cannot be created or written,\n"
            "checked before anything else, and a run directory in use or holding a run), 3 bad data\n"
            "or checkpoint, 4 bad config, 5 diverged\n"
            "(train.max_nonfinite non-finite updates in a row; the last good checkpoint stays),\n"
            "128+signal interrupted (130 SIGINT, 143 SIGTERM).\n");
}

int lg_cmd_train(int argc, char **argv) {
    const char *cfg_path = NULL, *out = NULL;
    int resume = 0, print_cfg = 0, help_cfg = 0, quiet = 0;
    /* --set may repeat: collect them, apply after the file */
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0;
    if (!sets) return lg_cli_fail("train", lg_error_set(LG_ERR_NOMEM, "out of memory"));
    int code = LG_EXIT_OK;
    int together_start = 0; /* dist: failed before the first step, agreed by all */
    lg_status s = LG_OK;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            goto done;
        } else if (!strcmp(a, "--set") || !strcmp(a, "--out")) {
            if (i + 1 >= argc) {
                code = lg_cli_usage_error("train", "%s needs a value", a);
                goto done;
            }
            if (a[2] == 's') sets[nsets++] = argv[++i];
            else out = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            sets[nsets++] = a + 6;
        } else if (!strncmp(a, "--out=", 6)) {
            out = a + 6;
        } else if (!strcmp(a, "--resume")) {
            resume = 1;
        } else if (!strcmp(a, "--print-config")) {
            print_cfg = 1;
        } else if (!strcmp(a, "--help-config")) {
            help_cfg = 1;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            code = lg_cli_usage_error("train", "unknown option '%s'", a);
            goto done;
        } else if (!cfg_path) {
            cfg_path = a;
        } else {
            code = lg_cli_usage_error("train", "one config file expected, got '%s' and '%s'", cfg_path, a);
            goto done;
        }
    }
    lg_config cfg;
    lg_config_default(&cfg);
    if (help_cfg) {
        lg_config_print(&cfg, stdout, 1);
        goto done;
    }
    if (!cfg_path) {
        code = lg_cli_usage_error("train", "missing CONFIG.yaml");
        goto done;
    }
    struct stat cfg_sb; /* a directory opens, then fails as a "read error": say what to give */
    if (stat(cfg_path, &cfg_sb) == 0 && S_ISDIR(cfg_sb.st_mode)) {
        code = lg_cli_fail("train", lg_error_set(LG_ERR_NOT_FOUND, "config %s: is a directory; give a YAML file "
                                                                   "(e.g. configs/fmnist_sn_hinge.yaml)",
                                                 cfg_path));
        goto done;
    }
    s = lg_config_load_file(&cfg, cfg_path);
    for (int i = 0; s == LG_OK && i < nsets; i++) s = lg_config_set(&cfg, sets[i]);
    if (s == LG_OK) s = lg_config_validate(&cfg);
    if (s != LG_OK) {
        code = lg_cli_fail("train", s);
        goto done;
    }
    if (print_cfg) {
        lg_config_warnings(&cfg, stderr, "lipgan train: ");
        lg_config_print(&cfg, stdout, 0);
        goto done;
    }
    char defdir[LG_CFG_PATH_MAX];
    if (!out) {
        const char *base = strrchr(cfg_path, '/');
        base = base ? base + 1 : cfg_path;
        size_t n = strcspn(base, ".");
        snprintf(defdir, sizeof defdir, "runs/%.*s", (int)(n ? n : 3), n ? base : "run");
        out = defdir;
    }

    /* --out before anything is printed or loaded. dist: rank 0 alone writes
     * it (the rank from the launcher's environment: MPI has not started) */
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (!rank) rank = getenv("PMI_RANK");
    struct stat out_sb;
    if ((!rank || !strcmp(rank, "0")) && !(resume && stat(out, &out_sb) != 0)) { /* a missing DIR to resume: exit 3 */
        s = lg_cli_check_run_dir("--out", out);
        if (s != LG_OK) {
            code = lg_cli_fail("train", s);
            goto done;
        }
    }

    lg_trainer *t;
    s = lg_trainer_create(&t, &cfg);
    if (s != LG_OK) {
        /* dist: set-up errors (config, batch sizes, data) are the same on
         * every process; rank 0 alone says so (rank: from the launcher's
         * environment, as MPI may not have started yet). */
        if (!strcmp(cfg.dist, "mpi") && rank && strcmp(rank, "0") != 0) code = lg_cli_exit_code(s);
        else code = lg_cli_fail("train", s);
        goto done;
    }
    if (lg_dist_rank() != 0) quiet = 1; /* dist: rank 0 speaks for the run */
    if (lg_dist_rank() == 0) lg_config_warnings(&cfg, stderr, "lipgan train: "); /* even when quiet */
    if (!strcmp(cfg.dist, "mpi") && lg_dist_world() == 1)
        fprintf(stderr, "lipgan train: warning: dist: mpi with 1 process (started without "
                        "mpirun -np P?); training as one process\n");
    if (!quiet)
        fprintf(stderr, "lipgan train: %s -> %s (%s, %lld steps, G %s / D %s, loss %s, device %s%s)\n",
                cfg_path, out, cfg.data.format, (long long)cfg.train.steps, cfg.model.g.arch,
                cfg.model.d.arch, cfg.loss, cfg.device,
                lg_dist_world() > 1 ? ", dist: mpi" : "");
    if (!quiet && lg_dist_world() > 1) {
        char each[64];
        if (!strcmp(cfg.device, "cuda")) /* lipgan/dist.h: process i of a machine on GPU i */
            snprintf(each, sizeof each, "a GPU each, from cuda.device %d on", cfg.cuda.device);
        else
            snprintf(each, sizeof each, "%d CPU threads each", lg_trainer_threads(t));
        fprintf(stderr,
                "lipgan train: %d MPI processes (%d on this machine, %s), each "
                "computing %d of the %d samples of a D update and %d of the %d of a G update; "
                "batch norm by %s\n",
                lg_dist_world(), lg_dist_local_size(), each,
                cfg.train.batch_d / lg_dist_world(), cfg.train.batch_d,
                cfg.train.batch_g / lg_dist_world(), cfg.train.batch_g,
                cfg.dist_sync_bn ? "the whole batch (dist_sync_bn)" : "each process's slice");
    }
    if (!quiet && lg_dist_data_shared_bytes())
        fprintf(stderr, "lipgan train: the data set (%.1f MB) is loaded once per machine and "
                "shared by its %d processes\n", (double)lg_dist_data_shared_bytes() / 1e6,
                lg_dist_local_size());
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    /* not over an inherited SIG_IGN (a background job's SIGINT) */
    const int caught_int = lg_cli_catch_signal(SIGINT, &sa, &old_int);
    const int caught_term = lg_cli_catch_signal(SIGTERM, &sa, &old_term);

    lg_train_opts o;
    memset(&o, 0, sizeof o);
    o.out_dir = out;
    o.resume = resume;
    o.progress = quiet ? NULL : stderr;
    o.stop_flag = &g_stop;
    s = lg_trainer_run(t, &o);
    if (caught_int) sigaction(SIGINT, &old_int, NULL);
    if (caught_term) sigaction(SIGTERM, &old_term, NULL);
    if (s == LG_OK) {
        /* a resumed run already at train.steps said so ("nothing to do") */
        int ran = lg_trainer_steps_done(t) > lg_trainer_run_start(t);
        if (!quiet && ran) fprintf(stderr, "lipgan train: done; samples in %s/samples.png\n", out);
    } else if (lg_trainer_run_peer_failed(t)) {
        /* dist: the failing process says why; the others end with its code */
        code = lg_trainer_run_dir_conflict(t) ? LG_EXIT_USAGE : lg_cli_exit_code(s);
    } else if (lg_trainer_run_dir_conflict(t)) {
        /* locked, or a fresh run into a DIR holding one: how it was asked for */
        fprintf(stderr, "lipgan train: error: %s\n", lg_error_msg());
        code = LG_EXIT_USAGE;
    } else if (s == LG_ERR_INTERRUPTED) {
        if (lg_dist_rank() == 0) fprintf(stderr, "lipgan train: %s\n", lg_error_msg());
        code = g_stop > 0 ? 128 + (int)g_stop : LG_EXIT_INTERRUPTED;
    } else {
        code = lg_cli_fail("train", s);
    }
    /* dist: a failure before the first step was agreed by every process */
    together_start = s != LG_OK && lg_trainer_run_start(t) < 0;
    lg_trainer_free(t);
done:
    free(sets);
    /* dist: outcomes every process reaches together end MPI normally; any
     * other failure (e.g. rank 0 cannot write) must not leave the other
     * processes waiting in a collective call */
    if (code == LG_EXIT_OK || s == LG_OK || s == LG_ERR_INTERRUPTED || s == LG_ERR_NONFINITE ||
        together_start || !lg_dist_active())
        lg_dist_finalize();
    else
        lg_dist_abort(code);
    return code;
}
