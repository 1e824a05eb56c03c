using IsolateGrains.Engine.Snapshots;

namespace IsolateGrains.Tests.Snapshots;

/// <summary>A file's fingerprint changes whenever its bytes are rewritten, even when its size and modification time are put back.</summary>
public sealed class FileFingerprintTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), "isolategrains-fingerprint-test-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public void ARewriteOfTheSameLengthWithTheModificationTimePutBackIsSeen()
    {
        File.WriteAllBytes(_path, new byte[64 * 1024]);
        var before = FileFingerprint.Of(_path);
        if (!OperatingSystem.IsLinux())
        {
            Assert.Null(before); // Elsewhere there is no fingerprint and the cache always hashes.
            return;
        }
        Assert.NotNull(before);
        Assert.Equal(before, FileFingerprint.Of(_path));
        Assert.Equal(64 * 1024, before.Length);

        // Coarse file system clocks tick every few milliseconds; a rewrite within the same tick is a documented blind spot.
        Thread.Sleep(50);
        var modified = File.GetLastWriteTimeUtc(_path);
        using (var stream = new FileStream(_path, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.Position = 1000;
            stream.Write([1, 2, 3, 4]);
        }
        File.SetLastWriteTimeUtc(_path, modified);

        var after = FileFingerprint.Of(_path);
        Assert.NotNull(after);
        Assert.Equal(before.Length, after.Length);
        Assert.NotEqual(before.ChangedNanoseconds, after.ChangedNanoseconds);
        Assert.NotEqual(before, after);
    }

    [Fact]
    public void AMissingFileHasNoFingerprint() => Assert.Null(FileFingerprint.Of(_path));

    public void Dispose() => File.Delete(_path);
}
