using IsolateGrains.Engine.FileSystem;
using Wasmtime;

namespace IsolateGrains.Engine.Imports;

/// <summary>
/// Heap growth and file mappings. Growth is where the per-sandbox memory limit bites: a refused growth
/// makes the guest's allocator fail, and the fault that follows is reported as the limit.
/// </summary>
internal static class MemoryImports
{
    private const int PageSize = 65536;
    private const int ProtectionWrite = 2;

    /// <summary>Defines the memory imports.</summary>
    public static void Define(Linker linker)
    {
        linker.DefineFunction("env", "emscripten_get_heap_max", (Caller caller) =>
            unchecked((int)(uint)Math.Min(Sandbox.From(caller).Limits.MaxMemoryBytes, 1L << 31)));
        linker.DefineFunction("env", "emscripten_resize_heap", (Caller caller, int requested) => ResizeHeap(Sandbox.From(caller), (uint)requested));
        linker.DefineFunction("env", "_mmap_js", (Caller caller, int length, int protection, int flags, int fd, long offset, int allocated, int address) =>
            Map(Sandbox.From(caller), length, fd, offset, allocated, address));
        // Writable shared mappings of files are not supported (the scratch files are tiny), so there is nothing to write back.
        linker.DefineFunction("env", "_munmap_js", (Caller caller, int address, int length, int protection, int flags, int fd, long offset) =>
            (protection & ProtectionWrite) != 0 && Sandbox.From(caller).Files.Get(fd) is { Node.Writable: true } ? -Errno.NotPermitted : 0);
        linker.DefineFunction("env", "_msync_js", (int address, int length, int protection, int flags, int fd, long offset) => 0);
    }

    /// <summary>Grows memory the way Emscripten does (over-allocating by up to 20 %), within the sandbox's limit.</summary>
    private static int ResizeHeap(Sandbox sandbox, uint requested)
    {
        var memory = sandbox.Exports.Memory;
        var oldSize = memory.GetLength();
        var max = Math.Min(sandbox.Limits.MaxMemoryBytes, 1L << 31);
        if (requested > max)
        {
            NoteLimit(sandbox, requested);
            return 0;
        }
        for (var cutDown = 1; cutDown <= 4; cutDown *= 2)
        {
            var overGrown = (long)Math.Min(oldSize * (1 + 0.2 / cutDown), requested + 100663296L);
            var newSize = Math.Min(max, AlignUp(Math.Max(requested, overGrown), PageSize));
            var pages = (newSize - oldSize + PageSize - 1) / PageSize;
            if (pages <= 0)
            {
                return 1;
            }
            try
            {
                memory.Grow(pages);
                return 1;
            }
            catch (WasmtimeException)
            {
                // Try a smaller over-allocation, as Emscripten does.
            }
        }
        NoteLimit(sandbox, requested);
        return 0;
    }

    private static void NoteLimit(Sandbox sandbox, long requested) =>
        sandbox.PendingFault ??= $"The sandbox reached its memory limit of {sandbox.Limits.MaxMemoryBytes / (1024 * 1024):N0} MiB " +
            $"(it asked for {requested / (1024 * 1024):N0} MiB; IsolatedRuntimeHostOptions.MaxMemoryBytes).";

    /// <summary>Maps a file by copying it into freshly allocated, zeroed guest memory (what MEMFS does).</summary>
    private static int Map(Sandbox sandbox, int length, int fd, long offset, int allocated, int address)
    {
        var file = sandbox.Files.Get(fd);
        if (file is null)
        {
            return -Errno.BadFileDescriptor;
        }
        if (file.Node.Kind != VirtualNodeKind.File)
        {
            return -Errno.NoDevice;
        }
        if (length <= 0 || offset < 0)
        {
            return -Errno.Invalid;
        }
        var pointer = sandbox.Exports.Memalign(PageSize, length);
        if (pointer == 0)
        {
            return -48; // ENOMEM
        }
        var target = sandbox.Span(pointer, length);
        target.Clear();
        var content = file.Node.Content;
        if (offset < content.Length)
        {
            var count = (int)Math.Min(length, content.Length - offset);
            content.Slice((int)offset, count).CopyTo(target);
        }
        sandbox.Exports.Memory.WriteInt32(allocated, 1);
        sandbox.Exports.Memory.WriteInt32(address, pointer);
        return 0;
    }

    private static long AlignUp(long value, long multiple) => (value + multiple - 1) / multiple * multiple;
}
