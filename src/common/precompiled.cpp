// The translation unit that builds src/common/precompiled.h into the shared precompiled header.
