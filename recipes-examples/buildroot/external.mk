################################################################################
#
# ctrbake: container images baked into the target (docs/buildroot.md)
#
# Exports the options for board/ctrbake/post-build.sh and adds the fetch step to
# `make source`, so that an offline build works after it.
#
################################################################################

ifeq ($(BR2_CTRBAKE),y)

# The ctrbake CLI on the build host: `make CTRBAKE=/path/to/ctrbake` to choose another.
CTRBAKE ?= ctrbake

export CTRBAKE
# DL_DIR: BR2_DL_DIR unquoted and absolute (package/pkg-download.mk), or the DL_DIR override.
export CTRBAKE_CACHE_DIR = $(DL_DIR)/ctrbake
export CTRBAKE_IMAGES_FILE = $(call qstrip,$(BR2_CTRBAKE_IMAGES_FILE))
export CTRBAKE_COMPOSE_FILE = $(call qstrip,$(BR2_CTRBAKE_COMPOSE_FILE))
export CTRBAKE_LOCK_FILE = $(call qstrip,$(BR2_CTRBAKE_LOCK_FILE))
export CTRBAKE_ENGINE = $(call qstrip,$(BR2_CTRBAKE_ENGINE))
export CTRBAKE_LAYOUT = $(call qstrip,$(BR2_CTRBAKE_LAYOUT))
export CTRBAKE_INIT = $(call qstrip,$(BR2_CTRBAKE_INIT))
export CTRBAKE_PARTITION_DEVICE = $(if $(BR2_CTRBAKE_PARTITION),$(call qstrip,$(BR2_CTRBAKE_PARTITION_DEVICE)))
export CTRBAKE_OFFLINE = $(BR2_CTRBAKE_OFFLINE)
export CTRBAKE_EXTRA_ARGS = $(call qstrip,$(BR2_CTRBAKE_EXTRA_ARGS))

# The same images, target and cache as the post-build script: its lock and blobs are found.
CTRBAKE_SOURCE_ARGS = \
	--br2-config $(BR2_CONFIG) \
	--cache $(CTRBAKE_CACHE_DIR) \
	$(if $(CTRBAKE_IMAGES_FILE),--images $(CTRBAKE_IMAGES_FILE)) \
	$(if $(CTRBAKE_COMPOSE_FILE),--compose $(CTRBAKE_COMPOSE_FILE)) \
	$(if $(CTRBAKE_LOCK_FILE),--lock $(CTRBAKE_LOCK_FILE)) \
	$(CTRBAKE_EXTRA_ARGS)

# The network step: lock (once) and fetch into BR2_DL_DIR.
.PHONY: ctrbake-source
ctrbake-source:
	$(CTRBAKE) build --fetch-only $(strip $(CTRBAKE_SOURCE_ARGS))

source: ctrbake-source

endif
